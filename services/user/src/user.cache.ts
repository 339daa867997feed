import type { User } from '@platform/db';
import { cacheMetrics } from '@platform/metrics';
import type { Redis } from '@platform/redis';

const TTL_SECONDS = 300;
const metrics = cacheMetrics('user');
const key = (id: string) => `users:user:${id}`;

type CachedUser = Omit<User, 'createdAt' | 'updatedAt'> & { createdAt: string; updatedAt: string };

function revive(text: string): User {
  const cached = JSON.parse(text) as CachedUser;
  return {
    ...cached,
    createdAt: new Date(cached.createdAt),
    updatedAt: new Date(cached.updatedAt),
  };
}

/** Read-through cache of user profiles; every write to a user must call `forget`. */
export interface UserCache {
  getMany(ids: readonly string[]): Promise<Map<string, User>>;
  setMany(users: readonly User[]): Promise<void>;
  forget(id: string): Promise<void>;
}

export function createUserCache(redis: Redis): UserCache {
  return {
    async getMany(ids) {
      const found = new Map<string, User>();
      if (ids.length === 0) return found;
      const values = await redis.mget(ids.map(key));
      values.forEach((value, index) => {
        const id = ids[index];
        if (value && id) found.set(id, revive(value));
      });
      metrics.hit(found.size);
      metrics.miss(ids.length - found.size);
      return found;
    },
    async setMany(users) {
      if (users.length === 0) return;
      const pipeline = redis.pipeline();
      for (const user of users) pipeline.set(key(user.id), JSON.stringify(user), 'EX', TTL_SECONDS);
      await pipeline.exec();
    },
    async forget(id) {
      await redis.del(key(id));
    },
  };
}
