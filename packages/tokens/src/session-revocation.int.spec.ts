import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, serverRunOf, type Redis } from '@platform/redis';
import {
  createTcpProxy,
  createTestRun,
  eventually,
  startRedisServer,
  type TestRun,
} from '@platform/testing';
import {
  completeMarker,
  createSessionRevocations,
  REVOKED_SESSIONS_KEY,
  type SessionRevocations,
} from './session-revocation';

describe('the Redis copy of ended sessions, when Redis loses it', () => {
  let run: TestRun;
  const clients: Redis[] = [];

  beforeAll(async () => {
    run = await createTestRun();
  });

  afterAll(async () => {
    for (const client of clients) await client.quit();
    await run.close();
  });

  async function connect(): Promise<Redis> {
    const redis = await createRedis({
      url: run.redisUrl,
      keyPrefix: run.redisKeyPrefix,
      logger: createLogger({ name: 'revocations-test', level: 'silent' }),
    });
    clients.push(redis);
    return redis;
  }

  /**
   * The auth service in miniature: its database of ended sessions, and the rebuild it does on
   * request (with a pause, so that lookups pile up while it runs). Each verifier instance has
   * its own Redis connection.
   */
  async function platform(options: { rebuildPauseMs?: number } = {}) {
    const database: string[] = [];
    const authRedis = await connect();
    let rebuilds = 0;
    let failing = false;
    const auth: SessionRevocations = createSessionRevocations(authRedis, {
      rebuild: () => rebuild(),
    });
    async function rebuild() {
      rebuilds++;
      if (failing) throw new Error('the auth service is unreachable');
      const snapshot = [...database];
      await new Promise((resolve) => setTimeout(resolve, options.rebuildPauseMs ?? 0));
      await auth.restore(snapshot.map((sessionId) => ({ sessionId, ttlSeconds: 900 })));
    }
    return {
      auth,
      async verifier() {
        return createSessionRevocations(await connect(), { rebuild });
      },
      async end(sessionId: string) {
        database.push(sessionId);
        await auth.revoke([sessionId], 900);
      },
      get rebuilds() {
        return rebuilds;
      },
      set failing(value: boolean) {
        failing = value;
      },
    };
  }

  it('does not trust "not revoked" from a set that lost its data: it is rebuilt first, once per instance for a burst, every time', async () => {
    const world = await platform({ rebuildPauseMs: 20 });
    const instances = [await world.verifier(), await world.verifier()];
    const ended = randomUUID();
    const live = randomUUID();
    await world.end(ended);

    for (let round = 0; round < 10; round++) {
      const redis = await connect();
      await redis.del(REVOKED_SESSIONS_KEY);
      const before = world.rebuilds;
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, index) =>
          instances[index % 2]!.isRevoked(index % 4 < 2 ? ended : live),
        ),
      );
      expect(answers).toEqual(Array.from({ length: 40 }, (_, index) => index % 4 < 2));
      // One rebuild per instance at most (they do not share a process); never one per lookup.
      expect(world.rebuilds - before).toBeGreaterThanOrEqual(1);
      expect(world.rebuilds - before).toBeLessThanOrEqual(2);
    }
  });

  it('rebuilds a set that holds entries written after the loss but not the marker', async () => {
    const world = await platform();
    const verifier = await world.verifier();
    const before = randomUUID();
    const after = randomUUID();
    await world.end(before);
    await (await connect()).del(REVOKED_SESSIONS_KEY);
    // A session ended while the data was gone: its entry alone does not make the set whole.
    await world.end(after);

    expect(await verifier.revokedAmong([before, after, randomUUID()])).toEqual(
      new Set([before, after]),
    );
    expect(await verifier.isComplete()).toBe(true);
  });

  it('answers SERVICE_UNAVAILABLE while the set cannot be rebuilt, and recovers by itself', async () => {
    const world = await platform();
    const verifier = await world.verifier();
    const ended = randomUUID();
    await world.end(ended);
    await (await connect()).del(REVOKED_SESSIONS_KEY);

    world.failing = true;
    await expect(verifier.isRevoked(randomUUID())).rejects.toThrow('unreachable');
    await expect(verifier.revokedAmong([ended])).rejects.toThrow('unreachable');
    world.failing = false;
    expect(await verifier.isRevoked(ended)).toBe(true);
  });

  it('answers SERVICE_UNAVAILABLE, not "not revoked", when the rebuild did not leave a whole set', async () => {
    const redis = await connect();
    const verifier = createSessionRevocations(redis, {
      // Says it rebuilt, but the data is lost again at once.
      rebuild: () => redis.del(REVOKED_SESSIONS_KEY),
    });
    await redis.del(REVOKED_SESSIONS_KEY);
    await expect(verifier.isRevoked(randomUUID())).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
    });
  });

  it('writes a rebuild and its marker at once: no reader ever sees the marker without all the entries, every time', async () => {
    const redis = await connect();
    const writer = createSessionRevocations(redis, { rebuild: async () => undefined });
    const reader = await connect();
    for (let round = 0; round < 5; round++) {
      await redis.del(REVOKED_SESSIONS_KEY);
      const sessions = Array.from({ length: 5_000 }, () => ({
        sessionId: randomUUID(),
        ttlSeconds: 900,
      }));
      const [first, last] = [sessions[0]!.sessionId, sessions.at(-1)!.sessionId];
      let done = false;
      const marker = completeMarker(await serverRunOf(reader).current());
      const watching = (async () => {
        while (!done) {
          const [markerScore, a, b] = await reader.zmscore(
            REVOKED_SESSIONS_KEY,
            marker,
            first,
            last,
          );
          if (markerScore !== null) {
            expect([a, b]).not.toContain(null);
          } else {
            expect([a, b]).toEqual([null, null]);
          }
        }
      })();
      await writer.restore(sessions);
      done = true;
      await watching;
      expect(await reader.zcard(REVOKED_SESSIONS_KEY)).toBe(5_001);
    }
  });

  it('keeps each entry as long as asked, never shortens one, and lets entries past their time go', async () => {
    const redis = await connect();
    let now = Date.UTC(2030, 0, 1);
    const revocations = createSessionRevocations(redis, {
      rebuild: async () => undefined,
      clock: () => now,
    });
    await redis.del(REVOKED_SESSIONS_KEY);
    const [short, long, again] = [randomUUID(), randomUUID(), randomUUID()];
    await revocations.restore([
      { sessionId: short, ttlSeconds: 10 },
      { sessionId: long, ttlSeconds: 900 },
    ]);
    await revocations.revoke([again], 960);
    // A rebuild with less time left for an entry keeps the longer one.
    await revocations.restore([{ sessionId: again, ttlSeconds: 5 }]);

    const score = async (member: string) =>
      Number(await redis.zscore(REVOKED_SESSIONS_KEY, member));
    expect(await score(short)).toBe(now + 10_000);
    expect(await score(long)).toBe(now + 900_000);
    expect(await score(again)).toBe(now + 960_000);

    now += 11_000;
    const newest = randomUUID();
    await revocations.revoke([newest], 60);
    expect(await revocations.revokedAmong([short, long, again])).toEqual(new Set([long, again]));
    expect(await revocations.isComplete()).toBe(true);
    // What it lists: the sessions whose entries are still in time, never the marker.
    expect((await revocations.listed()).toSorted()).toEqual([long, again, newest].toSorted());
    now += 70_000; // past the newest one's time, not yet pruned by a write
    expect((await revocations.listed()).toSorted()).toEqual([long, again].toSorted());
  });
});

describe('the Redis copy of ended sessions, when Redis rolls back', () => {
  it('does not trust a set handed back by a failover to a replica that lacks the latest ended sessions', async () => {
    const [primary, replica] = await Promise.all([startRedisServer(), startRedisServer()]);
    const proxy = await createTcpProxy({ host: '127.0.0.1', port: primary.port });
    const logger = createLogger({ name: 'revocations-test', level: 'silent' });
    const raw = await Promise.all(
      [primary, replica].map((server) => createRedis({ url: server.url, keyPrefix: '', logger })),
    );
    const redis = await createRedis({
      url: `redis://127.0.0.1:${proxy.port}`,
      keyPrefix: 'rollback:',
      logger,
    });
    try {
      // `ended` plays PostgreSQL, the truth; the rebuild reads it.
      const ended = new Set<string>();
      let rebuilds = 0;
      const revocations: SessionRevocations = createSessionRevocations(redis, {
        rebuild: async () => {
          rebuilds += 1;
          await revocations.restore(
            [...ended].map((sessionId) => ({ sessionId, ttlSeconds: 900 })),
          );
        },
      });
      const earlier = randomUUID();
      ended.add(earlier);
      await revocations.revoke([earlier], 900);
      expect(await revocations.isRevoked(earlier)).toBe(true); // rebuilt once: complete now
      expect(rebuilds).toBe(1);

      // Asynchronous replication: the replica holds the set as it was a moment ago...
      const key = `rollback:${REVOKED_SESSIONS_KEY}`;
      const snapshot = await raw[0]!.dumpBuffer(key);
      await raw[1]!.restore(key, 0, snapshot);
      // ...and misses a session ended since on the primary.
      const later = randomUUID();
      ended.add(later);
      await revocations.revoke([later], 900);
      expect(await revocations.isRevoked(later)).toBe(true);

      // Failover: the address now reaches the replica, marker and all, without `later`.
      proxy.retarget({ host: '127.0.0.1', port: replica.port });
      await eventually(async () => expect(await revocations.isRevoked(later)).toBe(true));
      expect(await revocations.isRevoked(earlier)).toBe(true);
      expect(rebuilds).toBe(2);
    } finally {
      redis.disconnect();
      for (const client of raw) client.disconnect();
      await proxy.close();
      await Promise.all([primary.stop(), replica.stop()]);
    }
  });
});
