import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { eventually, latch, startRedisServer, type TestRedisServer } from '@platform/testing';
import { createReadThroughCache, type ReadThroughCache } from './read-through-cache';
import { createRedis, type Redis } from './redis';
import { serverRunOf } from './server-run';

const keyPrefix = `test:read-through-${randomBytes(4).toString('hex')}:`;
const logger = createLogger({ name: 'read-through-test', level: 'silent' });
const RACES = 10;

const cacheOf = (redis: Redis) =>
  createReadThroughCache<string>(redis, {
    keyspace: 'things',
    ttlSeconds: 60,
    encode: (value) => value,
    decode: (text) => text,
    logger,
  });

/** A source of truth (a database, in the services) and a `load` that counts what it read. */
function createSource() {
  const values = new Map<string, string>();
  const loads: string[] = [];
  return {
    values,
    loads,
    async load(missing: readonly string[]) {
      loads.push(...missing);
      return new Map(missing.flatMap((id) => (values.has(id) ? [[id, values.get(id)!]] : [])));
    },
  };
}

/** A load that answers what the source held when it was called, then waits to be released. */
function gatedLoad(source: Map<string, string>) {
  const loaded = latch();
  const released = latch();
  return {
    wasLoaded: loaded.opened,
    release: released.open,
    async load(missing: readonly string[]) {
      const values = new Map(missing.flatMap((id) => [[id, source.get(id)!] as const]));
      loaded.open();
      await released.opened;
      return values;
    },
  };
}

describe('ReadThroughCache on Redis', () => {
  let redis: Redis;
  let cache: ReadThroughCache<string>;
  const { values: source, loads, load } = createSource();
  /** A change as the services make one: the source, then `forget`. */
  const change = async (id: string, value: string) => {
    source.set(id, value);
    await cache.forget(id);
  };

  beforeAll(async () => {
    redis = await createRedis({
      url: process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      keyPrefix,
      logger,
    });
    cache = cacheOf(redis);
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
    expect(await redis.keys(`${keyPrefix}*${nobody}`)).toEqual([]);
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

  it('caches nothing while a change is under way, also when its forget after the commit is lost', async () => {
    for (let race = 0; race < RACES; race++) {
      const id = randomUUID();
      source.set(id, 'before');
      await cache.get([id], load); // cached
      const pending = await cache.beginChange(id); // inside the change's transaction
      const slow = gatedLoad(source);
      const slowRead = cache.get([id], slow.load);
      await slow.wasLoaded; // read before the commit
      source.set(id, 'after'); // the commit; its forget is lost
      slow.release();
      expect((await slowRead).get(id)).toBe('before');
      loads.length = 0;
      expect((await cache.get([id], load)).get(id)).toBe('after');
      expect((await cache.get([id], load)).get(id)).toBe('after');
      // Loaded each time: nothing is cached under the pending change.
      expect(loads).toEqual([id, id]);
      // Another change's forget (one without beginChange) does not end this one.
      await cache.forget(id);
      await cache.get([id], load);
      expect(loads).toEqual([id, id, id]);
      await cache.forget(id, pending);
      await cache.get([id], load);
      loads.length = 0;
      expect((await cache.get([id], load)).get(id)).toBe('after');
      expect(loads).toEqual([]);
    }
  });

  it('removes, on every change, the entry where the previous version kept it', async () => {
    // An instance of that version may still run during a rollout, and read it.
    const [a, b] = [randomUUID(), randomUUID()];
    await redis.set(`things:${a}`, 'old').then(() => redis.set(`things:${b}`, 'old'));
    await cache.forget(a);
    await cache.beginChange(b);
    expect(await redis.exists(`things:${a}`, `things:${b}`)).toBe(0);
  });

  it('keeps a change of the same entry pending when the change before it forgets', async () => {
    for (let race = 0; race < RACES; race++) {
      const id = randomUUID();
      source.set(id, 'v0');
      // The first change commits; the second, waiting on the same row, begins before the
      // first one's forget reaches Redis.
      const first = await cache.beginChange(id);
      source.set(id, 'v1');
      await cache.beginChange(id);
      await cache.forget(id, first);
      // A read while the second change is under way loads v1 ...
      const slow = gatedLoad(source);
      const slowRead = cache.get([id], slow.load);
      await slow.wasLoaded;
      source.set(id, 'v2'); // ... the second change commits, and its forget is lost.
      slow.release();
      expect((await slowRead).get(id)).toBe('v1');
      expect((await cache.get([id], load)).get(id)).toBe('v2');
      expect((await cache.get([id], load)).get(id)).toBe('v2');
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
});

describe('ReadThroughCache on a Redis of its own', () => {
  let server: TestRedisServer;
  let redis: Redis;
  beforeEach(async () => {
    server = await startRedisServer();
    redis = await createRedis({ url: server.url, keyPrefix, logger });
  });
  afterEach(async () => {
    redis.disconnect();
    await server.stop();
  });

  it('answers nothing a restored snapshot brings back from before the restart', async () => {
    const cache = cacheOf(redis);
    const { values: source, loads, load } = createSource();
    const id = randomUUID();
    source.set(id, 'before');
    await cache.get([id], load);
    const entry = `things:${await serverRunOf(redis).current()}:${id}`;
    const snapshot = await redis.get(entry);
    expect(snapshot).toBe('before');
    // Changed, then the server restarts from a snapshot taken before the change.
    source.set(id, 'after');
    await cache.beginChange(id);
    await cache.forget(id);
    await server.crash();
    await server.start();
    await eventually(async () => expect(await redis.set(entry, snapshot!)).toBe('OK'));
    loads.length = 0;
    expect((await cache.get([id], load)).get(id)).toBe('after');
    expect(loads).toEqual([id]);
  });

  it('serves what it loads and lets changes through when Redis is full', async () => {
    const cache = cacheOf(redis);
    const { values: source, loads, load } = createSource();
    const [cached, uncached] = [randomUUID(), randomUUID()];
    source.set(cached, 'one').set(uncached, 'two');
    await cache.get([cached], load);
    // No write that needs memory succeeds any more (noeviction is the default policy).
    await redis.config('SET', 'maxmemory', '1');
    await expect(redis.set('probe', 'x')).rejects.toThrow(/OOM/);

    loads.length = 0;
    expect(await cache.get([cached, uncached], load)).toEqual(
      new Map([
        [cached, 'one'],
        [uncached, 'two'],
      ]),
    );
    expect(await cache.get([uncached], load)).toEqual(new Map([[uncached, 'two']]));
    expect(loads).toEqual([uncached, uncached]);

    // A change still takes its entry out.
    source.set(cached, 'changed');
    await cache.beginChange(cached);
    await cache.forget(cached);
    expect((await cache.get([cached], load)).get(cached)).toBe('changed');
  });
});
