import { randomBytes } from 'node:crypto';
import { BoundedMap } from '@platform/collections';
import { cacheMetrics } from '@platform/metrics';
import { serverRunOf, type Redis } from '@platform/redis';

const TTL_SECONDS = 300;
const ROLES_VERSION = 'rbac:version:roles';
const userVersion = (userId: string) => `rbac:version:user:${userId}`;
/**
 * A user's version key goes this long after it was set; the next read picks a new one, which
 * costs that user one reload and never brings an old entry back. Bounds the keys of users who
 * were checked once. The roles' version (one key) never expires: its expiry would make every
 * user reload at once.
 */
const VERSION_TTL_SECONDS = 7 * 24 * 3600;

/** 72 random bits: two versions ever being equal is out of the question. */
const freshVersion = () => randomBytes(9).toString('base64url');

/**
 * Each user's effective permissions per scope, in Redis and in this process.
 *
 * Consistency: entries are keyed by two versions, the roles' (replaced by any role change) and
 * the user's (replaced by their assignments changing). A change replaces its version inside
 * its transaction (Redis unreachable: the change fails and rolls back) and again after it
 * committed, before it returns; every read asks Redis for the current versions first, so no
 * check that starts after a change returns, on any instance, can see an entry from before it.
 * The in-process copy saves the second round trip and the parse, never the version check.
 *
 * Versions are random, not counters: when Redis loses them (a restart without persistence, an
 * eviction, an expiry), the next read finds none and sets a new random one. A counter would
 * start again at 0 and climb back to a value an instance still holds with the permissions of
 * before; a random version never comes back. And versions are qualified by the Redis server's
 * run (INFO run_id): a server restarted from a snapshot, or a replica promoted by a failover,
 * may hand back a version from before a change, but under another run (see docs/resilience.md).
 */
export interface PermissionCache {
  get(userId: string, scope: string, load: () => Promise<string[]>): Promise<string[]>;
  /** When the user's assignments change: inside the change's transaction and after it. */
  forgetUser(userId: string): Promise<void>;
  /** When a role changes, every user's entries: inside the change's transaction and after it. */
  forgetRoles(): Promise<void>;
}

// The in-process copy (by user, scope and version), then Redis; a Redis miss reads PostgreSQL.
const localMetrics = cacheMetrics('permission_local');
const redisMetrics = cacheMetrics('permission_redis');

export function createPermissionCache(
  redis: Redis,
  options: { localEntries?: number } = {},
): PermissionCache {
  const serverRun = serverRunOf(redis);
  const local = new BoundedMap<string, { version: string; permissions: string[] }>(
    options.localEntries ?? 10_000,
  );

  /** The current versions: one MGET; a missing one is set (if still missing) and read again. */
  async function versionOf(userId: string): Promise<string> {
    const keys = [ROLES_VERSION, userVersion(userId)] as const;
    const [run, [roles, user]] = await Promise.all([serverRun.current(), redis.mget(...keys)]);
    if (roles !== null && user !== null) return `${run}.${roles}.${user}`;
    // Never set, or lost: a new random version, unless another instance or a change set one
    // meanwhile (NX), then whatever is there now, in the same round trip.
    const results = await redis
      .multi()
      .set(keys[0], freshVersion(), 'NX')
      .set(keys[1], freshVersion(), 'EX', VERSION_TTL_SECONDS, 'NX')
      .mget(...keys)
      .exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    const [setRoles, setUser] = (results?.[2]?.[1] ?? []) as (string | null)[];
    if (!setRoles || !setUser) throw new Error('permission cache versions could not be set');
    return `${run}.${setRoles}.${setUser}`;
  }

  return {
    async get(userId, scope, load) {
      const version = await versionOf(userId);
      const localKey = `${userId}|${scope}`;
      const hit = local.get(localKey);
      if (hit?.version === version) {
        localMetrics.hit();
        return hit.permissions;
      }
      localMetrics.miss();

      const key = `rbac:effective:${userId}:${version}:${scope}`;
      const cached = await redis.get(key);
      // A Redis miss loads from PostgreSQL.
      if (cached === null) redisMetrics.miss();
      else redisMetrics.hit();
      const permissions = cached === null ? await load() : (JSON.parse(cached) as string[]);
      if (cached === null) await redis.set(key, JSON.stringify(permissions), 'EX', TTL_SECONDS);
      local.set(localKey, { version, permissions });
      return permissions;
    },
    async forgetUser(userId) {
      await redis.set(userVersion(userId), freshVersion(), 'EX', VERSION_TTL_SECONDS);
    },
    async forgetRoles() {
      await redis.set(ROLES_VERSION, freshVersion());
    },
  };
}
