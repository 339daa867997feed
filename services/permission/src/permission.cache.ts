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

/** An entry as held in Redis and in this process (validUntil in ms). */
interface StoredEntry {
  permissions: string[];
  validUntil: number | null;
  /** On the global scope's entry, when known: see CacheEntry.assignedScopes. */
  assignedScopes?: readonly string[] | undefined;
}

/**
 * A Redis entry: `{ permissions, validUntil, assignedScopes? }`, or a bare list as instances
 * before the MFA policy wrote it (valid until its TTL).
 */
function parseEntry(text: string | null): StoredEntry | null {
  if (text === null) return null;
  const parsed = JSON.parse(text) as string[] | StoredEntry;
  return Array.isArray(parsed) ? { permissions: parsed, validUntil: null } : parsed;
}

/** The global scope: its entry also answers every scope the user holds no assignment in. */
const GLOBAL = '';

/** Whether the global scope's entry answers for `scope`. */
const answersFor = (global: StoredEntry, scope: string) =>
  scope === GLOBAL ||
  (global.assignedScopes !== undefined && !global.assignedScopes.includes(scope));

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
  /**
   * The scopes the user holds an assignment in, when the load knows them. In any other scope
   * the user holds what they hold globally, so the global scope's entry answers for all of
   * them: asking for many scopes adds no entry (in Redis or in this process).
   */
  assignedScopes?: readonly string[];
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
  const local = new BoundedMap<string, StoredEntry & { version: string }>(
    options.localEntries ?? 10_000,
  );

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

  /** An entry of this process at `version`, if it has one still in force. */
  function localAt(version: string, userId: string, scope: string) {
    const hit = local.get(`${userId}|${scope}`);
    return hit?.version === version && inForce(hit) ? hit : undefined;
  }
  const inForce = (entry: StoredEntry | null | undefined): entry is StoredEntry =>
    !!entry && (entry.validUntil === null || entry.validUntil > now());

  /**
   * The entry at a version read just before: the in-process copy, else Redis, else `load`. The
   * global scope's entry answers for a scope the user holds no assignment in (it lists them).
   */
  async function entryAt(
    version: string,
    userId: string,
    scope: string,
    load: () => Promise<CacheEntry>,
  ): Promise<string[]> {
    const global = localAt(version, userId, GLOBAL);
    const hit = global && answersFor(global, scope) ? global : localAt(version, userId, scope);
    if (hit) {
      localMetrics.hit();
      return hit.permissions;
    }
    localMetrics.miss();

    // "grant", not the "effective" of instances before the MFA policy: a rolling upgrade's old and
    // new instances never read each other's entries (their formats differ).
    const keyOf = (of: string) => `rbac:grant:${userId}:${version}:${of}`;
    const remember = (of: string, entry: StoredEntry) =>
      local.set(`${userId}|${of}`, { version, ...entry });
    // The global entry too, unless this process holds it (then it does not answer this scope).
    const asked = scope === GLOBAL || global ? [scope] : [GLOBAL, scope];
    const found = (await redis.mget(...asked.map(keyOf))).map(parseEntry);
    for (const [index, entry] of found.entries()) {
      const of = asked[index] ?? scope;
      if (!inForce(entry) || (of === GLOBAL && !answersFor(entry, scope))) continue;
      redisMetrics.hit();
      remember(of, entry);
      return entry.permissions;
    }
    // A Redis miss (or an entry past its end) loads from PostgreSQL.
    redisMetrics.miss();
    const loaded = await load();
    const entry: StoredEntry = {
      permissions: loaded.permissions,
      validUntil: loaded.validUntil?.getTime() ?? null,
      assignedScopes: loaded.assignedScopes,
    };
    // Kept as the global scope's entry when it is the same (no assignment in this scope).
    const of = answersFor(entry, scope) ? GLOBAL : scope;
    if (of !== GLOBAL) delete entry.assignedScopes;
    // Never longer than the TTL, nor past the entry's end (Redis rounds to whole milliseconds).
    const ttlMs = Math.min(TTL_SECONDS * 1000, (entry.validUntil ?? Infinity) - now());
    if (ttlMs > 0) {
      await redis.set(keyOf(of), JSON.stringify(entry), 'PX', Math.floor(ttlMs));
      remember(of, entry);
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
