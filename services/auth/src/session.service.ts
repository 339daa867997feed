import type { Session } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent, type EventPayload } from '@platform/events';
import type { SessionRevocations, TokenSigner } from '@platform/tokens';
import { isUuid } from '@platform/validation';
import type { AuthTransaction, AuthTransactions } from './auth.transactions';
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken, type OpaqueToken } from './opaque-token';
import type { Rotation, SessionFilter, SessionRepository } from './session.repository';

export type RevocationReason = EventPayload<'auth.session_revoked'>['reason'];

export interface SessionPolicy {
  idleTtlSeconds: number;
  absoluteTtlSeconds: number;
  /** A rotated refresh token presented again within this window is tolerated (two tabs). */
  reuseGraceSeconds: number;
}

/** What a client keeps after signing in or refreshing. */
export interface SessionTokens {
  accessToken: string;
  refreshToken: string;
  /** Access token lifetime in seconds. */
  expiresIn: number;
  userId: string;
  sessionId: string;
}

/** Sessions, refresh rotation with reuse detection, and their end (see docs/identity.md). */
export interface SessionService {
  open(userId: string, userAgent: string | undefined): Promise<SessionTokens>;
  /** Exchanges a refresh token for a new one; UNAUTHENTICATED if it cannot be used. */
  refresh(refreshToken: string, userAgent: string | undefined): Promise<SessionTokens>;
  listActive(userId: string): Promise<Session[]>;
  /** Ends one of the user's active sessions; NOT_FOUND if it is not one. */
  revoke(userId: string, sessionId: string): Promise<void>;
  /** Ends every active session of the user but `exceptSessionId`; says how many. */
  revokeAll(
    userId: string,
    reason: RevocationReason,
    exceptSessionId: string | undefined,
  ): Promise<number>;
  /**
   * Ends sessions as part of the caller's transaction, each with its auth.session_revoked
   * event; once it commits, their access tokens stop working too. Returns the ids ended.
   */
  endWithin(
    tx: AuthTransaction,
    userId: string,
    which: SessionFilter,
    reason: RevocationReason,
  ): Promise<string[]>;
}

export interface SessionServiceDeps {
  sessions: SessionRepository;
  transactions: AuthTransactions;
  signer: TokenSigner;
  /** The Redis copy of ended sessions that every token verifier reads. */
  revocations: SessionRevocations;
  policy: SessionPolicy;
  clock?: () => Date;
}

const secondsFrom = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);
const earliest = (a: Date, b: Date) => (a < b ? a : b);
const clipUserAgent = (userAgent: string | undefined) => userAgent?.slice(0, 500) ?? null;
const invalidRefreshToken = () => AppError.unauthenticated('Invalid or expired refresh token');

export const isActive = (session: Session, at: Date): boolean =>
  !session.revokedAt && session.idleExpiresAt > at && session.expiresAt > at;

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { sessions, transactions, signer, revocations, policy } = deps;
  const clock = deps.clock ?? (() => new Date());
  // Revocation entries outlive the access tokens of the session they name.
  const revocationTtlSeconds = signer.ttlSeconds + 60;

  function tokensFor(session: Session, refreshToken: string): SessionTokens {
    return {
      accessToken: signer.sign({ userId: session.userId, sessionId: session.id }),
      refreshToken,
      expiresIn: signer.ttlSeconds,
      userId: session.userId,
      sessionId: session.id,
    };
  }

  function rotation(
    tokenHash: string,
    successor: OpaqueToken,
    at: Date,
    userAgent: string | null,
  ): Rotation {
    const idleExpiresAt = secondsFrom(at, policy.idleTtlSeconds);
    return { tokenHash, successorHash: successor.hash, at, idleExpiresAt, userAgent };
  }

  /** Unknown, ended, or presented again after the grace window: decided under the row lock. */
  async function refreshUnderLock(
    tx: AuthTransaction,
    tokenHash: string,
    userAgent: string | null,
  ) {
    const presented = await sessions.lockToken(tx.client, tokenHash);
    const now = clock();
    if (!presented || !isActive(presented.session, now)) return null;
    const { session, rotatedAt } = presented;
    if (rotatedAt && now.getTime() - rotatedAt.getTime() > policy.reuseGraceSeconds * 1000) {
      // A token rotated away long ago is back: someone else holds a copy. End the session.
      await endWithin(tx, session.userId, { only: session.id }, 'refresh_token_reuse');
      return null;
    }
    // Within the grace window a second tab gets a token of its own.
    const successor = newOpaqueToken();
    const touched = await sessions.rotate(
      tx.client,
      session.id,
      rotation(tokenHash, successor, now, userAgent),
    );
    return touched && tokensFor(touched, successor.token);
  }

  async function endWithin(
    tx: AuthTransaction,
    userId: string,
    which: SessionFilter,
    reason: RevocationReason,
  ) {
    const ended = await sessions.revoke(tx.client, userId, which, reason, clock());
    for (const sessionId of ended) {
      await tx.emit(createEvent('auth.session_revoked', { userId, sessionId, reason }));
    }
    // Access tokens of these sessions stop working now, not at their expiry.
    if (ended.length > 0) tx.afterCommit(() => revocations.revoke(ended, revocationTtlSeconds));
    return ended;
  }

  return {
    async open(userId, userAgent) {
      const now = clock();
      const expiresAt = secondsFrom(now, policy.absoluteTtlSeconds);
      const refresh = newOpaqueToken();
      const session = await sessions.create({
        userId,
        userAgent: clipUserAgent(userAgent),
        createdAt: now,
        idleExpiresAt: earliest(secondsFrom(now, policy.idleTtlSeconds), expiresAt),
        expiresAt,
        refreshTokenHash: refresh.hash,
      });
      return tokensFor(session, refresh.token);
    },

    async refresh(refreshToken, userAgent) {
      if (!isOpaqueToken(refreshToken)) throw invalidRefreshToken();
      const tokenHash = hashOpaqueToken(refreshToken);
      const agent = clipUserAgent(userAgent);
      // The common case in one statement: the token is current, or rotated within the grace
      // window, and its session is active.
      const now = clock();
      const successor = newOpaqueToken();
      const rotated = await sessions.rotateIfUsable(
        rotation(tokenHash, successor, now, agent),
        secondsFrom(now, -policy.reuseGraceSeconds),
      );
      // A session ended while the statement waited for the token is touched but stays ended.
      if (rotated && isActive(rotated, now)) return tokensFor(rotated, successor.token);
      const tokens = await transactions.run((tx) => refreshUnderLock(tx, tokenHash, agent));
      if (!tokens) throw invalidRefreshToken();
      return tokens;
    },

    listActive(userId) {
      return sessions.listActive(userId, clock());
    },

    async revoke(userId, sessionId) {
      if (!isUuid(sessionId)) throw AppError.notFound('Session');
      const ended = await transactions.run((tx) =>
        endWithin(tx, userId, { only: sessionId }, 'revoked'),
      );
      if (ended.length === 0) throw AppError.notFound('Session');
    },

    async revokeAll(userId, reason, exceptSessionId) {
      const ended = await transactions.run((tx) =>
        endWithin(tx, userId, { except: exceptSessionId }, reason),
      );
      return ended.length;
    },

    endWithin,
  };
}
