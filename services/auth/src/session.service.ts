import type { Session } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent, type EventPayload } from '@platform/events';
import type { Logger } from '@platform/logger';
import type { SessionRevocations, TokenSigner } from '@platform/tokens';
import { isUuid } from '@platform/validation';
import type { AuthTransaction, AuthTransactions, AuthTx } from './auth.transactions';
import {
  hashOpaqueToken,
  isOpaqueToken,
  newOpaqueToken,
  successorOf,
  type OpaqueToken,
} from './opaque-token';
import type {
  LiveToken,
  PresentedToken,
  Rotation,
  SessionFilter,
  SessionRepository,
} from './session.repository';

export type RevocationReason = EventPayload<'auth.session_revoked'>['reason'];

/**
 * What must still hold when a sign-in commits, checked in its transaction (throws if not): the
 * password it verified is still the current one, under the lock password changes take.
 */
export type Admit = (tx: AuthTx) => Promise<void>;

export interface SessionPolicy {
  idleTtlSeconds: number;
  absoluteTtlSeconds: number;
  /**
   * A rotated refresh token presented again within this window gets the session's live token
   * (two tabs refreshing at once); after it, it ends the session.
   */
  reuseGraceSeconds: number;
  /** Active sessions one user may hold: signing in once more ends the least recently used. */
  maxActiveSessions: number;
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
  /**
   * A new session. With `admit`, it is created in a transaction that runs `admit` first (a
   * check that must still hold when the session commits: the password it was opened with is
   * the current one), and not at all if `admit` throws.
   */
  open(userId: string, userAgent: string | undefined, admit?: Admit): Promise<SessionTokens>;
  /**
   * A new session created in the caller's transaction: it commits with what `tx` checked and
   * spent (a challenge, a code), or not at all. Sessions beyond the limit end after the commit.
   */
  openWithin(
    tx: AuthTransaction,
    userId: string,
    userAgent: string | undefined,
  ): Promise<SessionTokens>;
  /** Exchanges a refresh token for a new one; UNAUTHENTICATED if it cannot be used. */
  refresh(refreshToken: string, userAgent: string | undefined): Promise<SessionTokens>;
  listActive(userId: string): Promise<Session[]>;
  /** Ends one of the user's active sessions; NOT_FOUND if it is not one. */
  revoke(userId: string, sessionId: string): Promise<void>;
  /**
   * Ends the sessions among `listed` (what the Redis copy lists as ended) that the database
   * still holds live, each with its auth.session_revoked event: a revocation whose Redis write
   * was reported failed (so its transaction rolled back, and its caller was told 503) but reached
   * Redis anyway. Their tokens are refused already; left live, `refreshSession` would go on
   * issuing tokens the copy refuses, and once the entry aged out the session would work again,
   * though its user was answered 401 "session ended" meanwhile. What was asked is done instead.
   * How many it ended.
   */
  completeListedRevocations(listed: readonly string[]): Promise<number>;
  /** Ends every active session of the user but `exceptSessionId`; says how many. */
  revokeAll(
    userId: string,
    reason: RevocationReason,
    exceptSessionId: string | undefined,
  ): Promise<number>;
  /**
   * Ends sessions as part of the caller's transaction, each with its auth.session_revoked
   * event; their access tokens stop working before it commits (the Redis copy is written
   * inside it: Redis unreachable fails and rolls back the change). Returns the ids ended.
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
  revocations: Pick<SessionRevocations, 'revoke'>;
  policy: SessionPolicy;
  /** The key successors of refresh tokens are derived with (`ensureSuccessorKey`). */
  successorKey: Uint8Array;
  clock?: () => Date;
  /** Where a Redis copy that could not be written again after the commit is reported. */
  logger: Pick<Logger, 'error'>;
  /** Pauses between the attempts at that write (ms); their count is its length plus one. */
  afterCommitRetryMs?: readonly number[];
}

/**
 * How long a revocation entry stays: the longest an access token of the session can still be
 * presented after the session ended (its lifetime), and a minute for clocks that disagree.
 */
export const revocationTtlSeconds = (accessTokenTtlSeconds: number) => accessTokenTtlSeconds + 60;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const secondsFrom = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);
const earliest = (a: Date, b: Date) => (a < b ? a : b);
const clipUserAgent = (userAgent: string | undefined) => userAgent?.slice(0, 500) ?? null;
const invalidRefreshToken = () => AppError.unauthenticated('Invalid or expired refresh token');

export const isActive = (session: Session, at: Date): boolean =>
  !session.revokedAt && session.idleExpiresAt > at && session.expiresAt > at;

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { sessions, transactions, signer, revocations, policy, successorKey, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const retryMs = deps.afterCommitRetryMs ?? [50, 200, 1_000];
  // Revocation entries outlive the access tokens of the session they name.
  const entryTtlSeconds = revocationTtlSeconds(signer.ttlSeconds);

  /**
   * The write again once committed: Redis may have lost its data and been rebuilt from a
   * database read that did not see this transaction yet, between the first write and the
   * commit. Retried; if it still fails the ended sessions are in the database, Redis is most
   * likely unreachable (verifiers fail closed) or will be rebuilt, so the call succeeds.
   */
  async function writeAgain(ended: string[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await revocations.revoke(ended, entryTtlSeconds);
      } catch (error) {
        const wait = retryMs[attempt];
        if (wait === undefined) {
          logger.error(
            { err: error, sessionIds: ended },
            'ended sessions not written to Redis again after the commit',
          );
          return;
        }
        await pause(wait);
      }
    }
  }

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

  /**
   * The live token of the presented token's chain, derived again: every successor is
   * `successorOf` its predecessor, so it lies `live.generation - presented.generation` steps
   * on. Null if it does not (a token rotated before successors were derived).
   */
  function deriveLiveToken(token: string, presented: PresentedToken, live: LiveToken) {
    let derived = token;
    for (let step = presented.generation; step < live.generation; step++) {
      derived = successorOf(derived, successorKey).token;
    }
    return hashOpaqueToken(derived) === live.tokenHash ? derived : null;
  }

  /** Unknown, ended, or no longer current: decided under the row lock. */
  async function refreshUnderLock(tx: AuthTransaction, token: string) {
    const presented = await sessions.lockToken(tx.client, hashOpaqueToken(token));
    const now = clock();
    if (!presented || !isActive(presented.session, now)) return null;
    const { session, rotatedAt } = presented;
    if (rotatedAt && now.getTime() - rotatedAt.getTime() > policy.reuseGraceSeconds * 1000) {
      // A token rotated away long ago is back: someone else holds a copy. End the session.
      await endWithin(tx, session.userId, { only: session.id }, 'refresh_token_reuse');
      return null;
    }
    // Rotated within the grace window (a second tab, a retry): the caller gets the token the
    // session has now, not one of its own, so the session keeps a single chain of tokens.
    const live = await sessions.liveToken(tx.client, session.id);
    const liveToken = live && deriveLiveToken(token, presented, live);
    return liveToken ? tokensFor(session, liveToken) : null;
  }

  /** The user's least recently used sessions beyond `maxActiveSessions` end (the new one stays). */
  async function endBeyondLimit(userId: string, now: Date): Promise<void> {
    const excess = (await sessions.listActive(userId, now)).slice(policy.maxActiveSessions);
    if (excess.length === 0) return;
    await transactions.run(async (tx) => {
      for (const session of excess)
        await endWithin(tx, userId, { only: session.id }, 'session_limit');
    });
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
    if (ended.length > 0) {
      // Access tokens of these sessions stop working now, not at their expiry: written before
      // the commit (Redis unreachable fails the change, nothing half done) and after it.
      await revocations.revoke(ended, entryTtlSeconds);
      tx.afterCommit(() => writeAgain(ended));
    }
    return ended;
  }

  /** A session of the user starting now: its row, and the refresh token only its hash is kept of. */
  function newSession(userId: string, userAgent: string | undefined) {
    const now = clock();
    const expiresAt = secondsFrom(now, policy.absoluteTtlSeconds);
    const refresh = newOpaqueToken();
    const row = {
      userId,
      userAgent: clipUserAgent(userAgent),
      createdAt: now,
      idleExpiresAt: earliest(secondsFrom(now, policy.idleTtlSeconds), expiresAt),
      expiresAt,
      refreshTokenHash: refresh.hash,
    };
    return { row, refresh, now };
  }

  async function openWithin(tx: AuthTransaction, userId: string, userAgent: string | undefined) {
    const { row, refresh, now } = newSession(userId, userAgent);
    const session = await sessions.create(row, tx.client);
    tx.afterCommit(() => endBeyondLimit(userId, now));
    return tokensFor(session, refresh.token);
  }

  return {
    async open(userId, userAgent, admit) {
      if (admit)
        return transactions.runFor(userId, async (tx) => {
          await admit(tx.client);
          return openWithin(tx, userId, userAgent);
        });
      const { row, refresh, now } = newSession(userId, userAgent);
      const session = await sessions.create(row);
      await endBeyondLimit(userId, now);
      return tokensFor(session, refresh.token);
    },

    openWithin,

    async refresh(refreshToken, userAgent) {
      if (!isOpaqueToken(refreshToken)) throw invalidRefreshToken();
      // The common case in one statement: the token is current and its session is active.
      // Its successor is derived from it, so a later replay can derive the same one again.
      const now = clock();
      const successor = successorOf(refreshToken, successorKey);
      const rotated = await sessions.rotateIfCurrent(
        rotation(hashOpaqueToken(refreshToken), successor, now, clipUserAgent(userAgent)),
      );
      // A session ended while the statement waited for the token is touched but stays ended.
      if (rotated && isActive(rotated, now)) return tokensFor(rotated, successor.token);
      const tokens = await transactions.run((tx) => refreshUnderLock(tx, refreshToken));
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

    async completeListedRevocations(listed) {
      const live = await sessions.liveAmong(
        listed.filter((id) => isUuid(id)),
        clock(),
      );
      let ended = 0;
      for (const { id, userId } of live) {
        // A revocation still committing is waited for here, and then ends nothing more.
        const now = await transactions.run((tx) => endWithin(tx, userId, { only: id }, 'revoked'));
        ended += now.length;
      }
      return ended;
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
