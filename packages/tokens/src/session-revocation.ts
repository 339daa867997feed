import { AppError } from '@platform/errors';
import { serverRunOf, type Redis } from '@platform/redis';

/**
 * Ended sessions live in PostgreSQL (the auth schema); Redis holds a fast copy that every token
 * verifier reads. The copy is ONE sorted set: member = session id, score = when its entry may go
 * (epoch ms: no access token of the session lives longer), plus a marker member written only
 * together with a complete rebuild from the database. Redis loses a key whole (a restart without
 * persistence, a flush, an eviction), so a set that lacks the marker is one that lost data, and
 * its "not revoked" is not believed: the set is rebuilt first (by the auth service). A separate
 * marker key would not see one entry evicted or deleted on its own; a member of the same key does.
 */
export const REVOKED_SESSIONS_KEY = 'auth:revoked-sessions';
/**
 * The marker of a set rebuilt on the Redis server run `run` (INFO `run_id`). Not a session id
 * (those are UUIDs); its score is +inf, so pruning never removes it. Qualified by the run, so a
 * server restarted from a snapshot or a replica promoted by a failover, which keep the keys but
 * may lack the latest ended sessions, does not pass for complete: its run is another.
 */
export const completeMarker = (run: string) => `~complete:${run}`;
const MARKER_SCORE = '+inf';

/** One ended session and how long its entry must stay (its access tokens' longest life). */
export interface RevokedSession {
  sessionId: string;
  ttlSeconds: number;
}

export interface SessionRevocations {
  /** Adds ended sessions; an entry already there is never shortened. */
  revoke(sessionIds: readonly string[], ttlSeconds: number): Promise<void>;
  /**
   * Writes a rebuilt set and the marker in one MULTI/EXEC: a reader never sees the marker
   * without the data. Entries already there stay (a session ended while the rebuild read the
   * database is not lost); entries past their time go.
   */
  restore(sessions: readonly RevokedSession[]): Promise<void>;
  /** Whether the set holds its marker (nothing lost since the last rebuild). */
  isComplete(): Promise<boolean>;
  /** Whether the session ended; rebuilds the set first if Redis lost it. */
  isRevoked(sessionId: string): Promise<boolean>;
  /** The ended ones among many sessions, in one round trip (two after a loss). */
  revokedAmong(sessionIds: readonly string[]): Promise<Set<string>>;
  /**
   * For a caller that reads the set in its own script (the gateway, together with the
   * caller's budget): the marker member that says the set is complete on the current Redis
   * run. A read that finds it absent must `rebuild` and read again, as `isRevoked` does.
   */
  currentMarker(): Promise<string>;
  /** Rebuilds the set from the database; concurrent calls in this process share one. */
  rebuild(): Promise<unknown>;
  /** The sessions the set lists as ended now (entries not past their time; no marker). */
  listed(): Promise<string[]>;
}

export interface SessionRevocationsOptions {
  /**
   * Rebuilds the set from the database (the auth service's `RestoreRevocations`, or its own
   * restorer inside the auth service). Called when a lookup finds the marker missing; concurrent
   * lookups share one call.
   */
  rebuild: () => Promise<unknown>;
  clock?: () => number;
}

/** Scores are milliseconds; ZADD takes "score member" pairs. */
function scoredMembers(sessions: readonly RevokedSession[], now: number): string[] {
  return sessions.flatMap(({ sessionId, ttlSeconds }) => [
    String(now + ttlSeconds * 1000),
    sessionId,
  ]);
}

/** ZADD arguments per command: a rebuild of many sessions goes out in several, in one MULTI. */
const CHUNK = 1_000;

export function createSessionRevocations(
  redis: Redis,
  options: SessionRevocationsOptions,
): SessionRevocations {
  const clock = options.clock ?? Date.now;
  const serverRun = serverRunOf(redis);
  let rebuilding: Promise<unknown> | undefined;

  /** One rebuild at a time in this process: a burst of lookups after a loss asks once. */
  function rebuild(): Promise<unknown> {
    rebuilding ??= Promise.resolve()
      .then(options.rebuild)
      .finally(() => {
        rebuilding = undefined;
      });
    return rebuilding;
  }

  const currentMarker = async () => completeMarker(await serverRun.current());

  /** The marker and the sessions' entries in one ZMSCORE: null where absent. */
  async function lookup(sessionIds: readonly string[]) {
    const marker = await currentMarker();
    const scores = await redis.zmscore(REVOKED_SESSIONS_KEY, marker, ...sessionIds);
    const [markerScore, ...entries] = scores;
    return {
      complete: markerScore !== null,
      revoked: new Set(sessionIds.filter((_, index) => entries[index] !== null)),
    };
  }

  async function revokedAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    if (sessionIds.length === 0) return new Set();
    const first = await lookup(sessionIds);
    if (first.complete) return first.revoked;
    // Redis lost data: "not revoked" means nothing until the set is rebuilt from the database.
    await rebuild();
    const second = await lookup(sessionIds);
    if (second.complete) return second.revoked;
    // Lost again at once, or the rebuild did not take: no answer rather than a wrong one.
    throw AppError.unavailable();
  }

  return {
    async revoke(sessionIds, ttlSeconds) {
      if (sessionIds.length === 0) return;
      const now = clock();
      const members = scoredMembers(
        sessionIds.map((sessionId) => ({ sessionId, ttlSeconds })),
        now,
      );
      const results = await redis
        .multi()
        .zadd(REVOKED_SESSIONS_KEY, 'GT', ...members)
        .zremrangebyscore(REVOKED_SESSIONS_KEY, '-inf', `(${now}`)
        .exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },

    async restore(sessions) {
      const now = clock();
      const marker = await currentMarker();
      const transaction = redis.multi();
      for (let start = 0; start < sessions.length; start += CHUNK) {
        const members = scoredMembers(sessions.slice(start, start + CHUNK), now);
        transaction.zadd(REVOKED_SESSIONS_KEY, 'GT', ...members);
      }
      transaction
        // Markers of earlier runs go (only markers score +inf), this run's comes.
        .zremrangebyscore(REVOKED_SESSIONS_KEY, MARKER_SCORE, MARKER_SCORE)
        .zadd(REVOKED_SESSIONS_KEY, MARKER_SCORE, marker)
        .zremrangebyscore(REVOKED_SESSIONS_KEY, '-inf', `(${now}`);
      const results = await transaction.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },

    async isComplete() {
      const marker = await currentMarker();
      return (await redis.zscore(REVOKED_SESSIONS_KEY, marker)) !== null;
    },

    async isRevoked(sessionId) {
      return (await revokedAmong([sessionId])).has(sessionId);
    },

    async listed() {
      const members = await redis.zrangebyscore(REVOKED_SESSIONS_KEY, clock(), MARKER_SCORE);
      return members.filter((member) => !member.startsWith(completeMarker('')));
    },

    revokedAmong,
    currentMarker,
    rebuild,
  };
}
