import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createSharedLimits, type SharedLimits } from './shared-limits';

const logger = createLogger({ name: 'shared-limits-test', level: 'silent' });
const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const keyPrefix = `test:${randomUUID()}:`;

describe(createSharedLimits.name, () => {
  // Two gateway instances, each with its own Redis connection.
  let redisA: Redis;
  let redisB: Redis;
  const limits: SharedLimits[] = [];

  beforeAll(async () => {
    redisA = await createRedis({ url, keyPrefix, logger });
    redisB = await createRedis({ url, keyPrefix, logger });
  });

  afterAll(async () => {
    for (const limit of limits) limit.close();
    const keys = await redisA.keys(`${keyPrefix}*`);
    if (keys.length) await redisA.del(...keys.map((key) => key.slice(keyPrefix.length)));
    await redisA.quit();
    await redisB.quit();
  });

  const open = (redis: Redis, leaseMs?: number) => {
    const limit = createSharedLimits({ redis, logger, leaseMs });
    limits.push(limit);
    return limit;
  };

  it('counts one user against one limit across instances, even in a concurrent burst', async () => {
    for (let round = 0; round < 5; round++) {
      const [a, b] = [open(redisA), open(redisB)];
      const user = randomUUID();
      const attempts = Array.from({ length: 40 }, (_, n) => {
        const instance = n % 2 === 0 ? a : b;
        return instance.acquire('subscriptions', user, instance.leaseName(n), 7);
      });
      const taken = (await Promise.all(attempts)).filter(Boolean).length;
      expect(taken).toBe(7);
      // Another user is not affected.
      expect(await a.acquire('subscriptions', randomUUID(), a.leaseName('x'), 7)).toBe(true);
    }
  });

  it('gives a lease back on release, and connections are counted apart from subscriptions', async () => {
    const [a, b] = [open(redisA), open(redisB)];
    const user = randomUUID();
    expect(await a.acquire('connections', user, a.leaseName(1), 1)).toBe(true);
    expect(await b.acquire('connections', user, b.leaseName(1), 1)).toBe(false);
    expect(await b.acquire('subscriptions', user, b.leaseName(1, 's'), 1)).toBe(true);
    await a.release('connections', user, a.leaseName(1));
    expect(await b.acquire('connections', user, b.leaseName(2), 1)).toBe(true);
  });

  it('lets the leases of an instance that died lapse, and keeps a live instance’s renewed', async () => {
    const user = randomUUID();
    const live = open(redisA, 600);
    const dead = open(redisB, 600);
    expect(await live.acquire('subscriptions', user, live.leaseName(1), 2)).toBe(true);
    expect(await dead.acquire('subscriptions', user, dead.leaseName(1), 2)).toBe(true);
    dead.close(); // stops renewing, as a killed process does
    const other = open(redisB, 600);
    expect(await other.acquire('subscriptions', user, other.leaseName(1), 2)).toBe(false);
    // The dead one's lease lapses; the live one's stays (renewed every 200 ms).
    const deadline = Date.now() + 5_000;
    while (!(await other.acquire('subscriptions', user, other.leaseName(2), 2))) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(await other.acquire('subscriptions', user, other.leaseName(3), 2)).toBe(false);
  });
});
