import { randomUUID } from 'node:crypto';
import type { Redis } from '@platform/redis';

const KEY = 'rbac:leaving-users';
/** A mark outlives a removal that never ended (a crash between its two calls) at most this long. */
export const LEAVING_TTL_MS = 120_000;

/**
 * The users being disabled or deleted right now: the last-admin rule no longer counts them
 * as active, although the user service has not yet recorded the change. Marked under the
 * graph lock, cleared once the change was made or failed; a mark left behind expires.
 */
export interface LeavingUsers {
  /** Marks the user; the token clears this mark only (the same user may leave twice at once). */
  mark(userId: string): Promise<string>;
  clear(userId: string, token: string): Promise<void>;
  /** Which of these users are marked. */
  among(userIds: readonly string[]): Promise<Set<string>>;
}

export function createLeavingUsers(redis: Redis, now: () => number = Date.now): LeavingUsers {
  return {
    async mark(userId) {
      const token = randomUUID();
      await redis.zadd(KEY, now() + LEAVING_TTL_MS, `${userId}/${token}`);
      return token;
    },
    async clear(userId, token) {
      await redis.zrem(KEY, `${userId}/${token}`);
    },
    async among(userIds) {
      if (userIds.length === 0) return new Set();
      await redis.zremrangebyscore(KEY, '-inf', String(now()));
      const marked = new Set(
        (await redis.zrange(KEY, '0', '-1')).map((entry) => entry.split('/')[0]),
      );
      return new Set(userIds.filter((id) => marked.has(id)));
    },
  };
}
