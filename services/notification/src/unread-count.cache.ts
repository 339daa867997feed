import { cacheMetrics } from '@platform/metrics';
import type { Redis } from '@platform/redis';

const TTL_SECONDS = 300;
const metrics = cacheMetrics('unread_count');
const key = (recipientId: string) => `notifications:unread:${recipientId}`;

/** Cached unread counts; anything that changes a recipient's unread set calls `forget`. */
export interface UnreadCountCache {
  get(recipientId: string, load: () => Promise<number>): Promise<number>;
  forget(recipientId: string): Promise<void>;
}

export function createUnreadCountCache(redis: Redis): UnreadCountCache {
  return {
    async get(recipientId, load) {
      const cached = await redis.get(key(recipientId));
      if (cached !== null) {
        metrics.hit();
        return Number(cached);
      }
      metrics.miss();
      const count = await load();
      await redis.set(key(recipientId), String(count), 'EX', TTL_SECONDS);
      return count;
    },
    async forget(recipientId) {
      await redis.del(key(recipientId));
    },
  };
}
