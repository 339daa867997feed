import { randomBytes } from 'node:crypto';
import { BoundedMap } from '@platform/collections';
import { cacheMetrics } from '@platform/metrics';
import { serverRunOf, type Redis } from '@platform/redis';

const TTL_SECONDS = 300;
const ROLES_VERSION = 'rbac:version:roles';
/** Replaced by every change of the roles, also by one that changes nobody's permissions. */
const GRAPH_VERSION = 'rbac:version:graph';
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
 * A Redis entry: `{ permissions, validUntil }` (ms), or a bare list as instances before the MFA
 * policy wrote it (valid until its TTL).
 */
function parseEntry(
  text: string | null,
): { permissions: string[]; validUntil: number | null } | null {
  if (text === null) return null;
  const parsed = JSON.parse(text) as
    string[] | { permissions: string[]; validUntil: number | null };
  return Array.isArray(parsed) ? { permissions: parsed, validUntil: null } : parsed;
}

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
  get(userId: string, scope: string, load: () => Promise<CacheEntry>): Promise<string[]>;
  /** Several users' entries in one scope: their versions in one round trip, `load` per miss. */
  getMany(
    userIds: readonly string[],
    scope: string,
    load: (userId: string) => Promise<CacheEntry>,
  ): Promise<string[][]>;
  /**
   * The current versions, in one round trip: the role graph's (changes with any role change,
   * a new role included) and each user's (changes with any change of the roles' permissions or
   * inheritance, a deletion, or of the user's assignments). What is read from the database under
   * a version may be remembered under it (see RbacReads).
   */
  versions(userIds: readonly string[]): Promise<CacheVersions>;
  /** When the user's assignments change: inside the change's transaction and after it. */
  forgetUser(userId: string): Promise<void>;
  /**
   * When a role changes, every user's entries and the role graph: inside the change's
   * transaction and after it.
   */
  forgetRoles(): Promise<void>;
  /** When a role is added (nobody's permissions change): the role graph only, inside and after. */
  forgetRoleGraph(): Promise<void>;
}

/** What a load found, and until when it holds without any change (null: until one). */
export interface CacheEntry {
  permissions: string[];
  /**
   * The entry is not used from this moment on, in this process or from Redis (an MFA grace
   * period ends then). At or before now: used for the call that loaded it only.
   */
  validUntil: Date | null;
}

export interface CacheVersions {
  graph: string;
  /** By user id. */
  users: Map<string, string>;
}

// The in-process copy (by user, scope and version), then Redis; a Redis miss reads PostgreSQL.
const localMetrics = cacheMetrics('permission_local');
const redisMetrics = cacheMetrics('permission_redis');

export function createPermissionCache(
  redis: Redis,
  options: { localEntries?: number; clock?: () => number } = {},
): PermissionCache {
  const serverRun = serverRunOf(redis);
  const now = options.clock ?? Date.now;
  const local = new BoundedMap<
    string,
    { version: string; permissions: string[]; validUntil: number | null }
  >(options.localEntries ?? 10_000);

  /**
   * The current versions: one MGET of the roles' and the users'; a missing one is set (if still
   * missing) and all are read again.
   */
  async function versions(userIds: readonly string[]): Promise<CacheVersions> {
    const keys = [ROLES_VERSION, GRAPH_VERSION, ...userIds.map(userVersion)];
    const [run, values] = await Promise.all([serverRun.current(), redis.mget(...keys)]);
    let current = values;
    if (current.includes(null)) {
      // Never set, or lost: a new random version, unless another instance or a change set one
      // meanwhile (NX), then whatever is there now, in the same round trip.
      const transaction = redis
        .multi()
        .set(ROLES_VERSION, freshVersion(), 'NX')
        .set(GRAPH_VERSION, freshVersion(), 'NX');
      userIds.forEach((userId, index) => {
        if (current[index + 2] === null)
          transaction.set(userVersion(userId), freshVersion(), 'EX', VERSION_TTL_SECONDS, 'NX');
      });
      const results = await transaction.mget(...keys).exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
      current = (results?.at(-1)?.[1] ?? []) as (string | null)[];
      if (current.length !== keys.length || current.includes(null))
        throw new Error('permission cache versions could not be set');
    }
    const roles = `${run}.${current[0]}`;
    return {
      graph: `${run}.${current[1]}`,
      users: new Map(userIds.map((userId, index) => [userId, `${roles}.${current[index + 2]}`])),
    };
  }

  /** The entry at a version read just before: the in-process copy, else Redis, else `load`. */
  async function entryAt(
    version: string,
    userId: string,
    scope: string,
    load: () => Promise<CacheEntry>,
  ): Promise<string[]> {
    const localKey = `${userId}|${scope}`;
    const hit = local.get(localKey);
    if (hit?.version === version && (hit.validUntil === null || hit.validUntil > now())) {
      localMetrics.hit();
      return hit.permissions;
    }
    localMetrics.miss();

    // "grant", not the "effective" of instances before the MFA policy: a rolling upgrade's old and
    // new instances never read each other's entries (their formats differ).
    const key = `rbac:grant:${userId}:${version}:${scope}`;
    const cached = parseEntry(await redis.get(key));
    // A Redis miss (or an entry past its end) loads from PostgreSQL.
    if (cached && (cached.validUntil === null || cached.validUntil > now())) {
      redisMetrics.hit();
      local.set(localKey, { version, ...cached });
      return cached.permissions;
    }
    redisMetrics.miss();
    const loaded = await load();
    const validUntil = loaded.validUntil?.getTime() ?? null;
    // Never longer than the TTL, nor past the entry's end (Redis rounds to whole milliseconds).
    const ttlMs = Math.min(TTL_SECONDS * 1000, (validUntil ?? Infinity) - now());
    if (ttlMs > 0) {
      const entry = { permissions: loaded.permissions, validUntil };
      await redis.set(key, JSON.stringify(entry), 'PX', Math.floor(ttlMs));
      local.set(localKey, { version, ...entry });
    }
    return loaded.permissions;
  }

  const versionOf = (current: CacheVersions, userId: string): string => {
    const version = current.users.get(userId);
    if (version === undefined) throw new Error('permission cache: no version for the user');
    return version;
  };

  return {
    async get(userId, scope, load) {
      const current = await versions([userId]);
      return entryAt(versionOf(current, userId), userId, scope, load);
    },
    async getMany(userIds, scope, load) {
      const current = await versions(userIds);
      return Promise.all(
        userIds.map((userId) =>
          entryAt(versionOf(current, userId), userId, scope, () => load(userId)),
        ),
      );
    },
    versions,
    async forgetUser(userId) {
      await redis.set(userVersion(userId), freshVersion(), 'EX', VERSION_TTL_SECONDS);
    },
    async forgetRoles() {
      const results = await redis
        .multi()
        .set(ROLES_VERSION, freshVersion())
        .set(GRAPH_VERSION, freshVersion())
        .exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },
    async forgetRoleGraph() {
      await redis.set(GRAPH_VERSION, freshVersion());
    },
  };
}
