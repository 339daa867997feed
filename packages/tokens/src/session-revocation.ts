import type { Redis } from '@platform/redis';

const key = (sessionId: string) => `auth:revoked-session:${sessionId}`;

/**
 * Ended sessions, shared by the auth service (which writes) and every token verifier (which
 * reads): an access token whose session ended stops working at once, not at its expiry.
 * Entries only need to outlive the access tokens of the session.
 */
export interface SessionRevocations {
  revoke(sessionIds: readonly string[], ttlSeconds: number): Promise<void>;
  isRevoked(sessionId: string): Promise<boolean>;
  /** The ended ones among many sessions, in one round trip. */
  revokedAmong(sessionIds: readonly string[]): Promise<Set<string>>;
}

export function createSessionRevocations(redis: Redis): SessionRevocations {
  return {
    async revoke(sessionIds, ttlSeconds) {
      if (sessionIds.length === 0) return;
      const pipeline = redis.pipeline();
      for (const sessionId of sessionIds) pipeline.set(key(sessionId), '1', 'EX', ttlSeconds);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },
    async isRevoked(sessionId) {
      return (await redis.exists(key(sessionId))) === 1;
    },
    async revokedAmong(sessionIds) {
      if (sessionIds.length === 0) return new Set();
      const values = await redis.mget(sessionIds.map(key));
      return new Set(sessionIds.filter((_, index) => values[index] !== null));
    },
  };
}
