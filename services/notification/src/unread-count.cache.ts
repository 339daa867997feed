import type { Logger } from '@platform/logger';
import { cacheMetrics } from '@platform/metrics';
import { createReadThroughCache, type Redis } from '@platform/redis';

/**
 * Cached unread counts; anything that changes a recipient's unread set calls `forget` after it
 * committed. A count read before such a change is never cached after it (see
 * ReadThroughCache); a forget that fails is logged, and the count may then be behind for up to
 * its TTL (it gates nothing).
 */
export interface UnreadCountCache {
  get(recipientId: string, load: () => Promise<number>): Promise<number>;
  forget(recipientId: string): Promise<void>;
}

export function createUnreadCountCache(redis: Redis, logger: Logger): UnreadCountCache {
  const cache = createReadThroughCache<number>(redis, {
    logger,
    keyspace: 'notifications:unread',
    ttlSeconds: 300,
    encode: String,
    decode: Number,
    metrics: cacheMetrics('unread_count'),
  });
  return {
    async get(recipientId, load) {
      const counts = await cache.get(
        [recipientId],
        async () => new Map([[recipientId, await load()]]),
      );
      return counts.get(recipientId) ?? 0;
    },
    forget: (recipientId) => cache.forget(recipientId),
  };
}
