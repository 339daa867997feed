import type { User } from '@platform/db';
import type { Logger } from '@platform/logger';
import { cacheMetrics } from '@platform/metrics';
import { createReadThroughCache, type ReadThroughCache, type Redis } from '@platform/redis';

type CachedUser = Omit<User, 'createdAt' | 'updatedAt'> & { createdAt: string; updatedAt: string };

function revive(text: string): User {
  const cached = JSON.parse(text) as CachedUser;
  return {
    ...cached,
    createdAt: new Date(cached.createdAt),
    updatedAt: new Date(cached.updatedAt),
  };
}

/**
 * Read-through cache of user profiles; every write to a user must call `forget`. A read that
 * raced a change never caches the profile from before it (see ReadThroughCache).
 */
export type UserCache = ReadThroughCache<User>;

export function createUserCache(redis: Redis, logger: Logger): UserCache {
  return createReadThroughCache(redis, {
    logger,
    keyspace: 'users:user',
    ttlSeconds: 300,
    encode: (user) => JSON.stringify(user),
    decode: revive,
    metrics: cacheMetrics('user'),
  });
}
