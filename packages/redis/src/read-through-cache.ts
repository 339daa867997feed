import { randomBytes } from 'node:crypto';
import type { Result } from 'ioredis';
import type { Logger } from '@platform/logger';
import type { Redis } from './redis';
import { serverRunOf } from './server-run';

/** 72 random bits: a stamp never comes back, not even after Redis lost them all. */
const freshStamp = () => randomBytes(9).toString('base64url');
/** The stamp of a change not yet committed: no read caches anything under it. */
const PENDING = 'pending.';
/**
 * How long a stamp lasts. It only has to outlive one read's load (or one change's
 * transaction, for a pending stamp); one gone early only keeps a read out of the cache.
 */
const STAMP_TTL_SECONDS = 60;

// Scripts without flags: under `maxmemory` with `noeviction` (Redis full) they still run, their
// GETs and DELs succeed, and a SET fails, caught by `pcall`: the read then caches nothing, and a
// change still forgets.

// KEYS: stamps. ARGV: their TTL, then a fresh stamp per key. Returns each key's stamp, the fresh
// one where there was none, '' where none could be set (Redis full).
const HOLD = `
local stamps = {}
for i, key in ipairs(KEYS) do
  local stamp = redis.call('GET', key)
  if not stamp then
    local set = redis.pcall('SET', key, ARGV[i + 1], 'EX', ARGV[1])
    if type(set) == 'table' and set.err then stamp = '' else stamp = ARGV[i + 1] end
  end
  stamps[i] = stamp
end
return stamps
`;

// KEYS: n entries, then their n stamps. ARGV: the entries' TTL, then per entry the stamp its
// read held, '1' and its value if the source had one ('0' and '' if not). Where the stamp is
// still that one, the value is written, or, for an entry the source lacks, the stamp goes: ids
// of nothing leave no keys behind.
const FILL = `
local n = #KEYS / 2
for i = 1, n do
  local at = 3 * i - 1
  if redis.call('GET', KEYS[n + i]) == ARGV[at] then
    if ARGV[at + 1] == '1' then
      redis.pcall('SET', KEYS[i], ARGV[at + 2], 'EX', ARGV[1])
    else
      redis.call('DEL', KEYS[n + i])
    end
  end
end
return 0
`;

// KEYS: the entry, its stamp, its key of before (see `legacyKey`). ARGV: a pending stamp, its
// TTL. Redis full: the stamp goes instead (reads under way cache nothing; the forget after the
// commit is then what keeps it right).
const BEGIN = `
local set = redis.pcall('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
if type(set) == 'table' and set.err then redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[1], KEYS[3])
return 0
`;

// KEYS: the stamp, the entry, its key of before. ARGV: the pending stamp of the change that
// forgets ('' for a change that did not begin one). The entry goes; the stamp too, unless it is
// another change's pending stamp (a change of the same user that began once this one
// committed): that one stays until its own forget.
const FORGET = `
local stamp = redis.call('GET', KEYS[1])
if stamp and (stamp == ARGV[1] or string.sub(stamp, 1, ${PENDING.length}) ~= '${PENDING}') then
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2], KEYS[3])
return 0
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    readThroughHold(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<string[], Context>;
    readThroughFill(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<number, Context>;
    readThroughBegin(
      entryKey: string,
      stampKey: string,
      legacyKey: string,
      pendingStamp: string,
      ttlSeconds: number,
    ): Result<number, Context>;
    readThroughForget(
      stampKey: string,
      entryKey: string,
      legacyKey: string,
      pendingStamp: string,
    ): Result<number, Context>;
  }
}

export interface ReadThroughCacheOptions<T> {
  /** Entries are `<keyspace>:<server run>:<id>`, their change stamps `<keyspace>-stamp:<id>`. */
  keyspace: string;
  ttlSeconds: number;
  encode: (value: T) => string;
  decode: (text: string) => T;
  /** Warned (each warning at most every 10 s) when the cache could not be written or forgotten. */
  logger: Logger;
  /** Counts lookups (e.g. `cacheMetrics` of @platform/metrics). */
  metrics?: { hit: (count?: number) => void; miss: (count?: number) => void };
}

/**
 * A read-through cache in Redis of values whose source of truth is elsewhere (PostgreSQL).
 *
 * The race it closes: a read misses, loads the old row, a change commits and forgets the
 * entry, then the read writes the old row back, where it would stay for the TTL (a disabled
 * user still active for five minutes). So a read that missed first holds each entry's change
 * stamp, and writes what it loaded only where the stamp is still the one it held. A change
 * sets a pending stamp inside its transaction (`beginChange`: no read caches under it) and
 * deletes it after the commit (`forget`); a stamp Redis lost counts as changed.
 *
 * Entries are keyed by the Redis server's run (INFO `run_id`), and only the current run's are
 * read: a server restarted from a snapshot, or a replica promoted by a failover, may hand back
 * an entry from before a change, but under another run (see docs/resilience.md).
 */
export interface ReadThroughCache<T> {
  /**
   * The values of `ids`: from Redis, the rest from `load` (which answers those that exist), and
   * cached unless a change came meanwhile. One round trip when all are cached; a Redis that
   * cannot take writes (full) leaves what was loaded uncached.
   */
  get(
    ids: readonly string[],
    load: (missing: readonly string[]) => Promise<ReadonlyMap<string, T>>,
  ): Promise<Map<string, T>>;
  /**
   * Inside a change's transaction, before it commits: the entry goes, and reads cache nothing
   * of it until this change's `forget` (or for a minute). Throws when Redis cannot answer, so
   * that the change fails whole rather than commit with the old value cached. Returns what the
   * change's `forget` is given.
   */
  beginChange(id: string): Promise<string>;
  /**
   * After a change committed (`pending`: what its `beginChange` returned), or for a change
   * without one: the entry goes. Does not throw: a failure is logged, and the entry then stays
   * out of the cache through the pending stamp (a change that began with `beginChange`), or
   * the entry from before the change stays until its TTL (one that did not).
   */
  forget(id: string, pending?: string): Promise<void>;
}

export function createReadThroughCache<T>(
  redis: Redis,
  options: ReadThroughCacheOptions<T>,
): ReadThroughCache<T> {
  const { keyspace, ttlSeconds, encode, decode, logger, metrics } = options;
  const entryKey = (run: string, id: string) => `${keyspace}:${run}:${id}`;
  /**
   * Where entries were before they were keyed by the run. Instances of that version may still
   * run during a rollout: every change deletes it too, so theirs stay right. Remove once none
   * runs.
   */
  const legacyKey = (id: string) => `${keyspace}:${id}`;
  const stampKey = (id: string) => `${keyspace}-stamp:${id}`;
  const serverRun = serverRunOf(redis);
  redis.defineCommand('readThroughHold', { lua: HOLD });
  redis.defineCommand('readThroughFill', { lua: FILL });
  redis.defineCommand('readThroughBegin', { numberOfKeys: 3, lua: BEGIN });
  redis.defineCommand('readThroughForget', { numberOfKeys: 3, lua: FORGET });

  /** When each warning was last logged: one of each at most every 10 s. */
  const warnedAt = new Map<string, number>();
  function warn(error: unknown, what: string) {
    if (Date.now() - (warnedAt.get(what) ?? 0) < 10_000) return;
    warnedAt.set(what, Date.now());
    logger.warn({ err: error, cache: keyspace }, what);
  }

  /** Writes what `load` answered where the stamps held are unchanged (and drops the others). */
  async function fill(
    run: string,
    writes: readonly { id: string; stamp: string; text: string | undefined }[],
  ): Promise<void> {
    if (writes.length === 0) return;
    await redis.readThroughFill(
      writes.length * 2,
      ...writes.map(({ id }) => entryKey(run, id)),
      ...writes.map(({ id }) => stampKey(id)),
      ttlSeconds,
      ...writes.flatMap(({ stamp, text }) =>
        text === undefined ? [stamp, '0', ''] : [stamp, '1', text],
      ),
    );
  }

  return {
    async get(ids, load) {
      const found = new Map<string, T>();
      if (ids.length === 0) return found;
      // Known already but after a reconnect (then one INFO first).
      const run = await serverRun.current();
      const cached = await redis.mget(ids.map((id) => entryKey(run, id)));
      cached.forEach((text, index) => {
        const id = ids[index];
        if (text !== null && id !== undefined) found.set(id, decode(text));
      });
      metrics?.hit(found.size);
      const missing = [...new Set(ids.filter((id) => !found.has(id)))];
      if (missing.length === 0) return found;
      metrics?.miss(missing.length);

      let held: string[] = [];
      try {
        held = await redis.readThroughHold(
          missing.length,
          ...missing.map(stampKey),
          STAMP_TTL_SECONDS,
          ...missing.map(freshStamp),
        );
      } catch (error) {
        warn(error, 'cache not written: its change stamps could not be read');
      }
      // Only a stamp this read may write under: not one it could not set, not a pending change's.
      const writable = (index: number) => {
        const stamp = held[index];
        return stamp && !stamp.startsWith(PENDING) ? stamp : undefined;
      };
      let loaded: ReadonlyMap<string, T>;
      try {
        loaded = await load(missing);
      } catch (error) {
        // Nothing to write: the stamps this read set go (if still its own).
        await fill(
          run,
          missing.flatMap((id, index) => {
            const stamp = writable(index);
            return stamp ? [{ id, stamp, text: undefined }] : [];
          }),
        ).catch((cleanup: unknown) => warn(cleanup, 'change stamps not released'));
        throw error;
      }
      const writes = missing.flatMap((id, index) => {
        const value = loaded.get(id);
        if (value !== undefined) found.set(id, value);
        const stamp = writable(index);
        if (!stamp) return [];
        return [{ id, stamp, text: value === undefined ? undefined : encode(value) }];
      });
      await fill(run, writes).catch((error: unknown) => warn(error, 'cache not written'));
      return found;
    },

    async beginChange(id) {
      const pending = PENDING + freshStamp();
      await redis.readThroughBegin(
        entryKey(await serverRun.current(), id),
        stampKey(id),
        legacyKey(id),
        pending,
        STAMP_TTL_SECONDS,
      );
      return pending;
    },

    async forget(id, pending = '') {
      // Only deletes: works when Redis is full, where a SET would not; a missing stamp is a
      // changed one.
      try {
        await redis.readThroughForget(
          stampKey(id),
          entryKey(await serverRun.current(), id),
          legacyKey(id),
          pending,
        );
      } catch (error) {
        warn(error, 'cache entry not forgotten after a change');
      }
    },
  };
}
