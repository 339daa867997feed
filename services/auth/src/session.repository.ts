import type { PrismaClient, Session } from '@platform/db';
import type { AuthTx } from './auth.transactions';

export interface NewSession {
  userId: string;
  userAgent: string | null;
  createdAt: Date;
  idleExpiresAt: Date;
  expiresAt: Date;
  /** The hash of its first refresh token. */
  refreshTokenHash: string;
}

/** The exchange of a refresh token for its successor. */
export interface Rotation {
  tokenHash: string;
  successorHash: string;
  at: Date;
  /** The session's new idle expiry; never moved past its absolute expiry. */
  idleExpiresAt: Date;
  /** Replaces the stored user agent; null keeps it. */
  userAgent: string | null;
}

/** A presented refresh token: its session, when it was rotated (null: it is current), its place. */
export interface PresentedToken {
  session: Session;
  rotatedAt: Date | null;
  /** Its place in the session's chain: 0 for the first token, each successor one more. */
  generation: number;
}

/** The token of a session that has not been rotated: the one a client should hold now. */
export interface LiveToken {
  tokenHash: string;
  generation: number;
}

/** Which of a user's sessions a statement touches (none set: all). */
export interface SessionFilter {
  only?: string | undefined;
  except?: string | undefined;
  /** Only those begun before this instant (the sign-ins waiting for a second factor too). */
  createdBefore?: Date | undefined;
}

/** A session that was ended, and when. */
export interface EndedSession {
  id: string;
  revokedAt: Date;
}

export interface SessionRepository {
  /** In `tx` when given (the session commits with what the transaction checked). */
  create(session: NewSession, tx?: AuthTx): Promise<Session>;
  /**
   * One statement (no interactive transaction): rotates the token if it is current (never
   * rotated) and its session is active at `rotation.at`, adding the successor one generation
   * on. Null when it did not (nothing changed). A concurrent call for the same token waits for
   * this one, then finds it rotated.
   */
  rotateIfCurrent(rotation: Rotation): Promise<Session | null>;
  /** The token and its session, the token's row locked until `tx` ends. */
  lockToken(tx: AuthTx, tokenHash: string): Promise<PresentedToken | null>;
  /** The session's token not rotated yet (the newest, should there be several). */
  liveToken(tx: AuthTx, sessionId: string): Promise<LiveToken | null>;
  /** Not revoked, not expired at `at`; most recently used first. */
  listActive(userId: string, at: Date): Promise<Session[]>;
  /** Those of `sessionIds` that are not revoked and not past their absolute expiry at `at`. */
  liveAmong(sessionIds: readonly string[], at: Date): Promise<{ id: string; userId: string }[]>;
  /**
   * Marks revoked the user's sessions that are neither revoked nor past their absolute expiry
   * at `at`, in one statement: of concurrent calls, one ends each session. Returns their ids.
   * Unless `which.only` names one session, the user's sign-ins waiting for a second factor end
   * with them.
   */
  revoke(
    tx: AuthTx,
    userId: string,
    which: SessionFilter,
    reason: string,
    at: Date,
  ): Promise<string[]>;
  /** Sessions ended (revoked) after `since`, with when: what the Redis copy must hold. */
  endedSince(since: Date): Promise<EndedSession[]>;
  /**
   * The key successors of refresh tokens are derived with: the stored one, or `candidate`,
   * stored, if there is none yet. Of instances starting at once, all get the same key.
   */
  ensureSuccessorKey(candidate: Uint8Array): Promise<Uint8Array>;
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
  /** Only where a query selects it. */
  reauthenticated_at?: Date | null;
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
    reauthenticatedAt: row.reauthenticated_at ?? null,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
  };
}

/** `auth.refresh_token_keys` holds one key, under this id. */
const SUCCESSOR_KEY_ID = 1;

const touchedSession = (row: SessionRow | undefined) => (row ? toSession(row) : null);

export function createSessionRepository(db: PrismaClient): SessionRepository {
  return {
    create({ refreshTokenHash, createdAt, ...session }, tx) {
      return (tx ?? db).session.create({
        data: {
          ...session,
          createdAt,
          lastUsedAt: createdAt,
          refreshTokens: { create: { tokenHash: refreshTokenHash, createdAt } },
        },
      });
    },

    async rotateIfCurrent(rotation) {
      // FOR UPDATE makes a concurrent refresh of the same token wait, then see it rotated.
      const [row] = await db.$queryRawUnsafe<SessionRow[]>(
        `WITH current AS (
           SELECT rt.token_hash, rt.session_id, rt.generation
             FROM "auth"."refresh_tokens" rt JOIN "auth"."sessions" s ON s.id = rt.session_id
            WHERE rt.token_hash = $1 AND rt.rotated_at IS NULL
              AND s.revoked_at IS NULL AND s.idle_expires_at > $3::timestamptz AND s.expires_at > $3::timestamptz
              FOR UPDATE OF rt
         ), rotated AS (
           UPDATE "auth"."refresh_tokens" rt SET rotated_at = $3::timestamptz
             FROM current WHERE rt.token_hash = current.token_hash
         ), added AS (
           INSERT INTO "auth"."refresh_tokens" (token_hash, session_id, created_at, generation)
           SELECT $2, session_id, $3::timestamptz, generation + 1 FROM current
         )
         UPDATE "auth"."sessions" s
            SET last_used_at = $3::timestamptz,
                idle_expires_at = LEAST($4::timestamptz, expires_at),
                user_agent = COALESCE($5, user_agent)
           FROM current WHERE s.id = current.session_id
         RETURNING ${SESSION_COLUMNS}`,
        rotation.tokenHash,
        rotation.successorHash,
        rotation.at,
        rotation.idleExpiresAt,
        rotation.userAgent,
      );
      return touchedSession(row);
    },

    async lockToken(tx, tokenHash) {
      const [row] = await tx.$queryRawUnsafe<
        (SessionRow & { rotated_at: Date | null; generation: number })[]
      >(
        `SELECT rt.rotated_at, rt.generation, ${SESSION_COLUMNS}
           FROM "auth"."refresh_tokens" rt JOIN "auth"."sessions" s ON s.id = rt.session_id
          WHERE rt.token_hash = $1 FOR UPDATE OF rt`,
        tokenHash,
      );
      return row
        ? { session: toSession(row), rotatedAt: row.rotated_at, generation: row.generation }
        : null;
    },

    liveToken(tx, sessionId) {
      return tx.refreshToken.findFirst({
        where: { sessionId, rotatedAt: null },
        orderBy: { generation: 'desc' },
        select: { tokenHash: true, generation: true },
      });
    },

    listActive(userId, at) {
      return db.session.findMany({
        where: { userId, revokedAt: null, idleExpiresAt: { gt: at }, expiresAt: { gt: at } },
        orderBy: { lastUsedAt: 'desc' },
      });
    },

    liveAmong(sessionIds, at) {
      // One array parameter, however many ids (the Redis copy lists every recent revocation).
      return db.$queryRawUnsafe<{ id: string; userId: string }[]>(
        `SELECT id::text, user_id::text AS "userId" FROM "auth"."sessions"
          WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL AND expires_at > $2::timestamptz`,
        [...sessionIds],
        at,
      );
    },

    async revoke(tx, userId, which, reason, at) {
      // Ending the user's sessions (all, or all but the caller's) ends the sign-ins still
      // waiting for their second factor too: a challenge earned with a password that was just
      // changed or reset, or before "sign out everywhere", must not open a session afterwards.
      // First: a completion that holds the challenge (its session not committed yet) is waited
      // for here, and the sessions' statement after this one sees its session and ends it.
      if (which.only === undefined)
        await tx.$executeRawUnsafe(
          `UPDATE "auth"."mfa_challenges" SET used_at = $2::timestamptz
            WHERE user_id = $1::uuid AND used_at IS NULL
              AND ($3::timestamptz IS NULL OR created_at < $3::timestamptz)`,
          userId,
          at,
          which.createdBefore ?? null,
        );
      // `revoked_at IS NULL` is checked again on the latest row version after a concurrent
      // revocation commits, so two revocations never both end (and announce) one session.
      const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
        `UPDATE "auth"."sessions" SET revoked_at = $2::timestamptz, revoked_reason = $3
          WHERE user_id = $1::uuid AND revoked_at IS NULL AND expires_at > $2::timestamptz
            AND ($4::uuid IS NULL OR id = $4::uuid) AND ($5::uuid IS NULL OR id <> $5::uuid)
            AND ($6::timestamptz IS NULL OR created_at < $6::timestamptz)
         RETURNING id::text`,
        userId,
        at,
        reason,
        which.only ?? null,
        which.except ?? null,
        which.createdBefore ?? null,
      );
      return rows.map((row) => row.id);
    },

    async endedSince(since) {
      const rows = await db.session.findMany({
        where: { revokedAt: { gt: since } },
        select: { id: true, revokedAt: true },
      });
      return rows.flatMap(({ id, revokedAt }) => (revokedAt ? [{ id, revokedAt }] : []));
    },

    async ensureSuccessorKey(candidate) {
      // One row: the first instance's insert wins, the others' do nothing and read it.
      await db.refreshTokenKey.createMany({
        data: [{ id: SUCCESSOR_KEY_ID, secret: Uint8Array.from(candidate) }],
        skipDuplicates: true,
      });
      const { secret } = await db.refreshTokenKey.findUniqueOrThrow({
        where: { id: SUCCESSOR_KEY_ID },
      });
      return secret;
    },
  };
}
