import { BoundedMap } from '@platform/collections';
import type { Redis } from '@platform/redis';

const TTL_SECONDS = 300;
const ROLES_VERSION = 'rbac:version:roles';
const userVersion = (userId: string) => `rbac:version:user:${userId}`;

/**
 * Each user's effective permissions per scope, in Redis and in this process.
 *
 * Consistency: entries are keyed by two versions, the roles' (bumped by any role change) and
 * the user's (bumped by their assignments changing). A change bumps its version after its
 * transaction commits and before it returns, and every read asks Redis for the current
 * versions first, so no check that starts after a change returns, on any instance, can see
 * an entry from before it. The in-process copy saves the second round trip and the parse,
 * never the version check.
 */
export interface PermissionCache {
  get(userId: string, scope: string, load: () => Promise<string[]>): Promise<string[]>;
  /** After the user's assignments changed. */
  forgetUser(userId: string): Promise<void>;
  /** After a role changed: every user's entries. */
  forgetRoles(): Promise<void>;
}

export function createPermissionCache(
  redis: Redis,
  options: { localEntries?: number } = {},
): PermissionCache {
  const local = new BoundedMap<string, { version: string; permissions: string[] }>(
    options.localEntries ?? 10_000,
  );

  return {
    async get(userId, scope, load) {
      const [roles, user] = await redis.mget(ROLES_VERSION, userVersion(userId));
      const version = `${roles ?? '0'}.${user ?? '0'}`;
      const localKey = `${userId}|${scope}`;
      const hit = local.get(localKey);
      if (hit?.version === version) return hit.permissions;

      const key = `rbac:effective:${userId}:${version}:${scope}`;
      const cached = await redis.get(key);
      const permissions = cached === null ? await load() : (JSON.parse(cached) as string[]);
      if (cached === null) await redis.set(key, JSON.stringify(permissions), 'EX', TTL_SECONDS);
      local.set(localKey, { version, permissions });
      return permissions;
    },
    async forgetUser(userId) {
      await redis.incr(userVersion(userId));
    },
    async forgetRoles() {
      await redis.incr(ROLES_VERSION);
    },
  };
}
