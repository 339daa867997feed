import { randomBytes } from 'node:crypto';
import type { Result } from 'ioredis';
import type { Redis } from './redis';

/** 72 random bits: a stamp never comes back, not even after Redis lost them all. */
const freshStamp = () => randomBytes(9).toString('base64url');

// KEYS: stamps. ARGV: the stamps' TTL, then a fresh stamp per key. Returns each key's stamp,
// the fresh one where there was none.
const HOLD = `
local stamps = {}
for i, key in ipairs(KEYS) do
  local stamp = redis.call('GET', key)
  if not stamp then
    stamp = ARGV[i + 1]
    redis.call('SET', key, stamp, 'EX', ARGV[1])
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
      redis.call('SET', KEYS[i], ARGV[at + 2], 'EX', ARGV[1])
    else
      redis.call('DEL', KEYS[n + i])
    end
  end
end
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
  }
}

export interface ReadThroughCacheOptions<T> {
  /** Entries are `<keyspace>:<id>`, their change stamps `<keyspace>-stamp:<id>`. */
  keyspace: string;
  ttlSeconds: number;
  encode: (value: T) => string;
  decode: (text: string) => T;
  /** Counts lookups (e.g. `cacheMetrics` of @platform/metrics). */
  metrics?: { hit: (count?: number) => void; miss: (count?: number) => void };
}

/**
 * A read-through cache in Redis of values whose source of truth is elsewhere (PostgreSQL).
 *
 * The race it closes: a read misses, loads the old row, a change commits and forgets the
 * entry, then the read writes the old row back, where it would stay for the TTL (a disabled
 * user still active for five minutes). So a read that missed first holds each entry's change
 * stamp, and writes what it loaded only where the stamp is still the one it held; `forget`
 * replaces the stamp. A stamp Redis lost (a restart, a flush, an eviction) counts as changed:
 * that read writes nothing, and the next one loads again.
 */
export interface ReadThroughCache<T> {
  /**
   * The values of `ids`: from Redis, the rest from `load` (which answers those that exist), and
   * cached unless a change forgot them meanwhile. One round trip when all are cached.
   */
  get(
    ids: readonly string[],
    load: (missing: readonly string[]) => Promise<ReadonlyMap<string, T>>,
  ): Promise<Map<string, T>>;
  /**
   * Every change of an entry's source calls this: inside its transaction (so that Redis
   * unreachable fails the change) and again after it committed.
   */
  forget(id: string): Promise<void>;
}

export function createReadThroughCache<T>(
  redis: Redis,
  options: ReadThroughCacheOptions<T>,
): ReadThroughCache<T> {
  const { keyspace, ttlSeconds, encode, decode, metrics } = options;
  // A stamp outlives the entries written under it. Any TTL is safe: a stamp gone before the
  // write only keeps that read out of the cache.
  const stampTtlSeconds = 2 * ttlSeconds;
  const entryKey = (id: string) => `${keyspace}:${id}`;
  const stampKey = (id: string) => `${keyspace}-stamp:${id}`;
  redis.defineCommand('readThroughHold', { lua: HOLD });
  redis.defineCommand('readThroughFill', { lua: FILL });

  return {
    async get(ids, load) {
      const found = new Map<string, T>();
      if (ids.length === 0) return found;
      const cached = await redis.mget(ids.map(entryKey));
      cached.forEach((text, index) => {
        const id = ids[index];
        if (text !== null && id !== undefined) found.set(id, decode(text));
      });
      metrics?.hit(found.size);
      const missing = [...new Set(ids.filter((id) => !found.has(id)))];
      if (missing.length === 0) return found;
      metrics?.miss(missing.length);

      const held = await redis.readThroughHold(
        missing.length,
        ...missing.map(stampKey),
        stampTtlSeconds,
        ...missing.map(freshStamp),
      );
      const loaded = await load(missing);
      const writes = missing.flatMap((id, index) => {
        const value = loaded.get(id);
        if (value !== undefined) found.set(id, value);
        const stamp = held[index];
        return stamp === undefined ? [] : [{ id, stamp, value }];
      });
      if (writes.length > 0)
        await redis.readThroughFill(
          writes.length * 2,
          ...writes.map(({ id }) => entryKey(id)),
          ...writes.map(({ id }) => stampKey(id)),
          ttlSeconds,
          ...writes.flatMap(({ stamp, value }) =>
            value === undefined ? [stamp, '0', ''] : [stamp, '1', encode(value)],
          ),
        );
      return found;
    },

    async forget(id) {
      const results = await redis
        .multi()
        .set(stampKey(id), freshStamp(), 'EX', stampTtlSeconds)
        .del(entryKey(id))
        .exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },
  };
}
