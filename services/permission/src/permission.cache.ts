import type { Redis } from '@platform/redis';

const TTL_SECONDS = 300;
const versionKey = (userId: string) => `rbac:version:${userId}`;

/**
 * Each user's effective permissions per scope. Keys carry a per-user version: a change
 * bumps the version (`forgetUser`), so no later read can see the old entry.
 */
export interface PermissionCache {
  get(userId: string, scope: string, load: () => Promise<string[]>): Promise<string[]>;
  forgetUser(userId: string): Promise<void>;
}

export function createPermissionCache(redis: Redis): PermissionCache {
  return {
    async get(userId, scope, load) {
      const version = (await redis.get(versionKey(userId))) ?? '0';
      const key = `rbac:effective:${userId}:${version}:${scope}`;
      const cached = await redis.get(key);
      if (cached !== null) return JSON.parse(cached) as string[];
      const permissions = await load();
      await redis.set(key, JSON.stringify(permissions), 'EX', TTL_SECONDS);
      return permissions;
    },
    async forgetUser(userId) {
      await redis.incr(versionKey(userId));
    },
  };
}
