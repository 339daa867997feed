import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createReadThroughCache, type ReadThroughCache } from './read-through-cache';
import { createRedis, type Redis } from './redis';

const keyPrefix = `test:read-through-${randomBytes(4).toString('hex')}:`;
const RACES = 10;

/** A load that answers what the source held when it was called, then waits to be released. */
function gatedLoad(source: Map<string, string>) {
  let loaded!: () => void;
  const wasLoaded = new Promise<void>((resolve) => (loaded = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    wasLoaded,
    release,
    async load(missing: readonly string[]) {
      const values = new Map(missing.flatMap((id) => [[id, source.get(id)!] as const]));
      loaded();
      await released;
      return values;
    },
  };
}

describe('ReadThroughCache on Redis', () => {
  let redis: Redis;
  let cache: ReadThroughCache<string>;
  /** The source of truth (a database, in the services). */
  const source = new Map<string, string>();
  const loads: string[] = [];
  const load = async (missing: readonly string[]) => {
    loads.push(...missing);
    return new Map(missing.flatMap((id) => (source.has(id) ? [[id, source.get(id)!]] : [])));
  };
  /** A change as the services make one: the source, then `forget`. */
  const change = async (id: string, value: string) => {
    source.set(id, value);
    await cache.forget(id);
  };

  beforeAll(async () => {
    redis = await createRedis({
      url: process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      keyPrefix,
      logger: createLogger({ name: 'read-through-test', level: 'silent' }),
    });
    cache = createReadThroughCache(redis, {
      keyspace: 'things',
      ttlSeconds: 60,
      encode: (value) => value,
      decode: (text) => text,
    });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(keyPrefix.length)));
    redis.disconnect();
  });

  it('loads what it lacks once, answers it from Redis after, and forgets it on a change', async () => {
    const [a, b, nobody] = [randomUUID(), randomUUID(), randomUUID()];
    source.set(a, 'a1').set(b, 'b1');
    loads.length = 0;
    expect(await cache.get([a, b, nobody], load)).toEqual(
      new Map([
        [a, 'a1'],
        [b, 'b1'],
      ]),
    );
    expect(await cache.get([a, b], load)).toEqual(
      new Map([
        [a, 'a1'],
        [b, 'b1'],
      ]),
    );
    expect(loads.sort()).toEqual([a, b, nobody].sort());
    // Ids of nothing leave no keys behind (a caller asking for random ids fills no memory).
    expect(await redis.exists(`things:${nobody}`, `things-stamp:${nobody}`)).toBe(0);
    expect(await redis.exists(`things-stamp:${a}`)).toBe(1);
    await change(a, 'a2');
    expect((await cache.get([a], load)).get(a)).toBe('a2');
  });

  it('never keeps a value loaded before a change that landed while it was loaded', async () => {
    for (let race = 0; race < RACES; race++) {
      const id = randomUUID();
      source.set(id, 'before');
      const slow = gatedLoad(source);
      const slowRead = cache.get([id], slow.load);
      await slow.wasLoaded;
      await change(id, 'after');
      slow.release();
      // The slow read answers what it loaded; nobody after it sees that.
      expect((await slowRead).get(id)).toBe('before');
      expect((await cache.get([id], load)).get(id)).toBe('after');
      expect((await cache.get([id], load)).get(id)).toBe('after');
    }
  });

  it('keeps nothing a read loaded while Redis lost the stamps, and loads it again next time', async () => {
    const id = randomUUID();
    source.set(id, 'value');
    const slow = gatedLoad(source);
    const slowRead = cache.get([id], slow.load);
    await slow.wasLoaded;
    // As after a restart without persistence, a flush or an eviction: the stamp is gone.
    await redis.del(`things-stamp:${id}`);
    slow.release();
    expect((await slowRead).get(id)).toBe('value');
    loads.length = 0;
    expect((await cache.get([id], load)).get(id)).toBe('value');
    expect(loads).toEqual([id]);
    // That read kept it.
    expect((await cache.get([id], load)).get(id)).toBe('value');
    expect(loads).toEqual([id]);
  });

  it('shows every read after a change the change, however many reads race it', async () => {
    for (let race = 0; race < RACES; race++) {
      const id = randomUUID();
      source.set(id, 'before');
      await Promise.all([
        ...Array.from({ length: 5 }, () => cache.get([id], load)),
        change(id, 'after'),
        ...Array.from({ length: 5 }, () => cache.get([id], load)),
      ]);
      expect((await cache.get([id], load)).get(id)).toBe('after');
    }
  });
});
