import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient, Session } from '@platform/db';
import { createEvent, type EventPayload } from '@platform/events';
import { enqueueEvent, type OutboxRelay } from '@platform/outbox';

export const AUTH_SCHEMA = 'auth';

export type RevocationReason = EventPayload<'auth.session_revoked'>['reason'];

export interface SessionPolicy {
  idleTtlSeconds: number;
  absoluteTtlSeconds: number;
  reuseGraceSeconds: number;
}

export type RotationResult =
  | { kind: 'rotated'; session: Session; refreshToken: string }
  | { kind: 'reused'; session: Session }
  | { kind: 'invalid' };

export interface SessionRepository {
  open(
    userId: string,
    userAgent: string | undefined,
  ): Promise<{ session: Session; refreshToken: string }>;
  /** Exchanges a refresh token for a new one (see docs/identity.md for the reuse rules). */
  rotate(refreshToken: string, userAgent: string | undefined): Promise<RotationResult>;
  listActive(userId: string): Promise<Session[]>;
  /** Ends the given active sessions of a user; returns the ids that were ended. */
  revoke(
    userId: string,
    filter: { only?: string; except?: string },
    reason: RevocationReason,
  ): Promise<string[]>;
}

/** 256 bits of randomness; only its SHA-256 is stored. */
function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The columns of a session as raw SQL returns them (used where one statement beats several). */
const SESSION_COLUMNS = `s.id::text, s.user_id::text, s.user_agent, s.created_at, s.last_used_at,
  s.idle_expires_at, s.expires_at, s.revoked_at, s.revoked_reason`;

interface SessionRow {
  id: string;
  user_id: string;
  user_agent: string | null;
  created_at: Date;
  last_used_at: Date;
  idle_expires_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

function toSession(row: SessionRow): Session {
  return {
    id: row.id,
    userId: row.user_id,
    userAgent: row.user_agent,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    idleExpiresAt: row.idle_expires_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
  };
}

const secondsFrom = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);
const earliest = (a: Date, b: Date) => (a < b ? a : b);

export function createSessionRepository(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
  policy: SessionPolicy,
): SessionRepository {
  const isActive = (session: Session, now: Date) =>
    !session.revokedAt && session.idleExpiresAt > now && session.expiresAt > now;

  return {
    async open(userId, userAgent) {
      const now = new Date();
      const expiresAt = secondsFrom(now, policy.absoluteTtlSeconds);
      const { token, hash } = newRefreshToken();
      const session = await db.session.create({
        data: {
          userId,
          userAgent: userAgent?.slice(0, 500) ?? null,
          idleExpiresAt: earliest(secondsFrom(now, policy.idleTtlSeconds), expiresAt),
          expiresAt,
          refreshTokens: { create: { tokenHash: hash } },
        },
      });
      return { session, refreshToken: token };
    },

    async rotate(refreshToken, userAgent) {
      const tokenHash = hashToken(refreshToken);
      // The common case in one statement (one round trip, no interactive transaction): the
      // token is current, or rotated within the grace window, and its session is active.
      // FOR UPDATE makes a concurrent refresh of the same token wait and then see it rotated.
      const fresh = newRefreshToken();
      const [rotated] = await db.$queryRawUnsafe<SessionRow[]>(
        `WITH current AS (
           SELECT rt.token_hash, rt.session_id
             FROM "auth"."refresh_tokens" rt JOIN "auth"."sessions" s ON s.id = rt.session_id
            WHERE rt.token_hash = $1
              AND (rt.rotated_at IS NULL OR rt.rotated_at >= $3::timestamptz - make_interval(secs => $6::double precision))
              AND s.revoked_at IS NULL AND s.idle_expires_at > $3::timestamptz AND s.expires_at > $3::timestamptz
              FOR UPDATE OF rt
         ), rotated AS (
           UPDATE "auth"."refresh_tokens" rt SET rotated_at = COALESCE(rt.rotated_at, $3::timestamptz)
             FROM current WHERE rt.token_hash = current.token_hash
         ), added AS (
           INSERT INTO "auth"."refresh_tokens" (token_hash, session_id, created_at)
           SELECT $2, session_id, $3::timestamptz FROM current
         )
         UPDATE "auth"."sessions" s
            SET last_used_at = $3::timestamptz,
                idle_expires_at = LEAST($3::timestamptz + make_interval(secs => $4::double precision), expires_at),
                user_agent = COALESCE($5, user_agent)
           FROM current WHERE s.id = current.session_id
         RETURNING ${SESSION_COLUMNS}`,
        tokenHash,
        fresh.hash,
        new Date(),
        policy.idleTtlSeconds,
        userAgent?.slice(0, 500) ?? null,
        policy.reuseGraceSeconds,
      );
      if (rotated)
        return { kind: 'rotated', session: toSession(rotated), refreshToken: fresh.token };

      // Unknown, ended, or reused after the grace window: decide under the row lock.
      const result = await db.$transaction(async (tx): Promise<RotationResult> => {
        // One locked read: the row lock serialises concurrent refreshes of the same token.
        const [row] = await tx.$queryRawUnsafe<(SessionRow & { rotated_at: Date | null })[]>(
          `SELECT rt.rotated_at, ${SESSION_COLUMNS}
             FROM "auth"."refresh_tokens" rt JOIN "auth"."sessions" s ON s.id = rt.session_id
            WHERE rt.token_hash = $1 FOR UPDATE OF rt`,
          tokenHash,
        );
        if (!row) return { kind: 'invalid' };
        const session = toSession(row);
        const now = new Date();
        if (!isActive(session, now)) return { kind: 'invalid' };

        const withinGrace =
          row.rotated_at !== null &&
          now.getTime() - row.rotated_at.getTime() <= policy.reuseGraceSeconds * 1000;
        if (row.rotated_at !== null && !withinGrace) {
          // A token rotated away long ago is back: someone else holds a copy. End the session.
          const revoked = await tx.session.update({
            where: { id: session.id },
            data: { revokedAt: now, revokedReason: 'refresh_token_reuse' },
          });
          await enqueueEvent(
            tx,
            AUTH_SCHEMA,
            createEvent('auth.session_revoked', {
              userId: session.userId,
              sessionId: session.id,
              reason: 'refresh_token_reuse',
            }),
          );
          return { kind: 'reused', session: revoked };
        }

        // Mark the token rotated (first time only), add the new one, touch the session: one
        // statement. Within the grace window a second tab gets a token of its own.
        const { token, hash } = newRefreshToken();
        const [updated] = await tx.$queryRawUnsafe<SessionRow[]>(
          `WITH rotated AS (
             UPDATE "auth"."refresh_tokens" SET rotated_at = COALESCE(rotated_at, $4::timestamptz) WHERE token_hash = $1
           ), added AS (
             INSERT INTO "auth"."refresh_tokens" (token_hash, session_id, created_at) VALUES ($2, $3::uuid, $4::timestamptz)
           )
           UPDATE "auth"."sessions" s
              SET last_used_at = $4::timestamptz,
                  idle_expires_at = LEAST($4::timestamptz + make_interval(secs => $5::double precision), expires_at),
                  user_agent = COALESCE($6, user_agent)
            WHERE id = $3::uuid
           RETURNING ${SESSION_COLUMNS}`,
          tokenHash,
          hash,
          session.id,
          now,
          policy.idleTtlSeconds,
          userAgent?.slice(0, 500) ?? null,
        );
        if (!updated) return { kind: 'invalid' };
        return { kind: 'rotated', session: toSession(updated), refreshToken: token };
      });
      if (result.kind === 'reused') relay.kick();
      return result;
    },

    listActive(userId) {
      const now = new Date();
      return db.session.findMany({
        where: { userId, revokedAt: null, idleExpiresAt: { gt: now }, expiresAt: { gt: now } },
        orderBy: { lastUsedAt: 'desc' },
      });
    },

    async revoke(userId, filter, reason) {
      const ids = await db.$transaction(async (tx) => {
        const now = new Date();
        const sessions = await tx.session.findMany({
          where: {
            userId,
            revokedAt: null,
            expiresAt: { gt: now },
            ...(filter.only ? { id: filter.only } : {}),
            ...(filter.except ? { NOT: { id: filter.except } } : {}),
          },
          select: { id: true },
        });
        if (sessions.length === 0) return [];
        await tx.session.updateMany({
          where: { id: { in: sessions.map((s) => s.id) } },
          data: { revokedAt: now, revokedReason: reason },
        });
        for (const { id } of sessions) {
          await enqueueEvent(
            tx,
            AUTH_SCHEMA,
            createEvent('auth.session_revoked', { userId, sessionId: id, reason }),
          );
        }
        return sessions.map((s) => s.id);
      });
      if (ids.length > 0) relay.kick();
      return ids;
    },
  };
}
