import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createRequestBudget } from './request-budget';

const logger = createLogger({ name: 'budget-test', level: 'silent' });
const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
// Its own key prefix: runs never see each other's buckets.
const keyPrefix = `test:${randomUUID()}:`;

describe(createRequestBudget.name, () => {
  let instanceA: Redis;
  let instanceB: Redis;

  beforeAll(async () => {
    instanceA = await createRedis({ url, keyPrefix, logger });
    instanceB = await createRedis({ url, keyPrefix, logger });
  });

  afterAll(async () => {
    const keys = await instanceA.keys(`${keyPrefix}*`);
    if (keys.length) await instanceA.del(...keys.map((key) => key.slice(keyPrefix.length)));
    await instanceA.quit();
    await instanceB.quit();
  });

  const budget = (redis: Redis, perSecond: number, burst: number) =>
    createRequestBudget({ redis, perSecond, burst, logger });

  it('lets a caller spend the burst at once, then refuses with the seconds until it may retry', async () => {
    const caller = `user:${randomUUID()}`;
    const bucket = budget(instanceA, 10, 100);
    expect(await bucket.charge(caller, 60)).toEqual({ allowed: true });
    expect(await bucket.charge(caller, 40)).toEqual({ allowed: true });
    // 50 points at 10 a second: 5 s (give or take the few points regained meanwhile).
    const refused = await bucket.charge(caller, 50);
    expect(refused.allowed).toBe(false);
    expect(refused).toMatchObject({ retryAfter: expect.any(Number) as number });
    expect(refused.allowed === false && refused.retryAfter).toBeGreaterThanOrEqual(4);
    expect(refused.allowed === false && refused.retryAfter).toBeLessThanOrEqual(5);
  });

  it("charges one caller's cost to that caller only", async () => {
    const bucket = budget(instanceA, 1, 100);
    const heavy = `user:${randomUUID()}`;
    expect(await bucket.charge(heavy, 100)).toEqual({ allowed: true });
    expect((await bucket.charge(heavy, 10)).allowed).toBe(false);
    expect(await bucket.charge(`user:${randomUUID()}`, 100)).toEqual({ allowed: true });
  });

  it('is one budget across gateway instances', async () => {
    const caller = `user:${randomUUID()}`;
    expect(await budget(instanceA, 1, 100).charge(caller, 70)).toEqual({ allowed: true });
    expect((await budget(instanceB, 1, 100).charge(caller, 70)).allowed).toBe(false);
    expect(await budget(instanceB, 1, 100).charge(caller, 30)).toEqual({ allowed: true });
  });

  it('lets exactly the burst through when many requests arrive at once on two instances', async () => {
    const caller = `user:${randomUUID()}`;
    const [a, b] = [budget(instanceA, 0.001, 100), budget(instanceB, 0.001, 100)];
    const decisions = await Promise.all(
      Array.from({ length: 300 }, (_, n) => (n % 2 ? a : b).charge(caller, 1)),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(100);
  });

  it('gives points back over time', async () => {
    const caller = `user:${randomUUID()}`;
    const bucket = budget(instanceA, 1_000, 50);
    expect(await bucket.charge(caller, 50)).toEqual({ allowed: true });
    expect(await bucket.charge(caller, 50)).toMatchObject({ allowed: false, retryAfter: 1 });
    let decision = await bucket.charge(caller, 10);
    while (!decision.allowed) decision = await bucket.charge(caller, 10);
    expect(decision).toEqual({ allowed: true });
  });

  it('lets an operation dearer than the whole bucket through when the bucket is full', async () => {
    const caller = `user:${randomUUID()}`;
    const bucket = budget(instanceA, 1, 100);
    expect(await bucket.charge(caller, 5_000)).toEqual({ allowed: true });
    expect((await bucket.charge(caller, 1)).allowed).toBe(false);
  });

  it('refuses with SERVICE_UNAVAILABLE when Redis cannot answer (fails closed)', async () => {
    const broken = await createRedis({ url, keyPrefix, logger });
    broken.disconnect();
    await expect(budget(broken, 1, 1).charge(`user:${randomUUID()}`, 1_000)).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      retryAfter: 5,
    });
  });

  it('is off at 0 points a second', async () => {
    const bucket = budget(instanceA, 0, 1);
    for (let n = 0; n < 3; n++)
      expect(await bucket.charge(`user:${randomUUID()}`, 1_000)).toEqual({ allowed: true });
  });
});
