import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from './redis';
import { createSlidingWindows, type SlidingWindow } from './sliding-windows';

const keyPrefix = `test:sliding-${randomBytes(4).toString('hex')}:`;
const MINUTE = 60_000;

describe('SlidingWindows against Redis', () => {
  let redis: Redis;
  const windowsOn = (client: Redis) => createSlidingWindows(client, 'windows:');
  const windows = () => windowsOn(redis);
  const window = (limit: number, windowMs = MINUTE): SlidingWindow => ({
    id: randomUUID(),
    limit,
    windowMs,
  });
  const held = (id: string) => redis.zcard(`windows:${id}`);

  beforeAll(async () => {
    redis = await createRedis({
      url: process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      keyPrefix,
      logger: createLogger({ name: 'sliding-windows-test', level: 'silent' }),
    });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(keyPrefix.length)));
    redis.disconnect();
  });

  it('records exactly the limit of 60 reservations racing for one window, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const tight = window(5);
      const loose = window(50);
      // Separate connections, so the reservations really arrive at Redis interleaved.
      const clients = Array.from({ length: 4 }, () => redis.duplicate());
      const clientsWindows = clients.map(windowsOn);
      try {
        const waits = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            clientsWindows[i % clientsWindows.length]!.reserve(
              [tight, loose],
              randomUUID(),
              Date.now(),
            ),
          ),
        );
        expect(waits.filter((wait) => wait === 0)).toHaveLength(5);
        expect(await held(tight.id)).toBe(5);
        expect(await held(loose.id)).toBe(5);
      } finally {
        for (const client of clients) client.disconnect();
      }
    }
  });

  it('reserves in every window or in none', async () => {
    const full = window(1);
    const roomy = window(10);
    const now = Date.now();
    expect(await windows().reserve([full], 'first', now)).toBe(0);
    expect(await windows().reserve([roomy, full], 'second', now)).toBeGreaterThan(0);
    expect(await held(roomy.id)).toBe(0);
  });

  it('says how long until the oldest reservation of the fullest window ages out', async () => {
    const tight = window(2, MINUTE);
    const loose = window(2, 10 * MINUTE);
    const start = Date.now();
    await windows().reserve([tight, loose], 'a', start);
    await windows().reserve([tight, loose], 'b', start + 1_000);
    expect(await windows().reserve([tight, loose], 'c', start + 5_000)).toBe(10 * MINUTE - 5_000);
  });

  it('ages reservations out of the window', async () => {
    const tight = window(2, MINUTE);
    const start = Date.now();
    await windows().reserve([tight], 'a', start);
    await windows().reserve([tight], 'b', start + 30_000);
    expect(await windows().reserve([tight], 'c', start + MINUTE - 1)).toBe(1);
    expect(await windows().reserve([tight], 'c', start + MINUTE)).toBe(0);
    expect(await windows().reserve([tight], 'd', start + MINUTE + 1)).toBe(29_999);
  });

  it('waits until enough have aged out when more than the limit are held (the limit was lowered)', async () => {
    const bucket = window(3, MINUTE);
    const start = Date.now();
    for (const [n, at] of [0, 10_000, 20_000].entries())
      expect(await windows().reserve([bucket], `r${n}`, start + at)).toBe(0);
    const lowered = { ...bucket, limit: 2 };
    // Room for one more once two are left: when the second oldest ages out.
    expect(await windows().reserve([lowered], 'next', start + 30_000)).toBe(40_000);
    expect(await windows().reserve([lowered], 'next', start + 70_000)).toBe(0);
  });

  it('frees the place of a released reservation in every window it held', async () => {
    const tight = window(1);
    const loose = window(5);
    const now = Date.now();
    await windows().reserve([tight, loose], 'not counted', now);
    await windows().release([tight.id, loose.id], 'not counted');
    expect(await held(loose.id)).toBe(0);
    expect(await windows().reserve([tight, loose], 'next', now)).toBe(0);
  });

  it('lets the windows expire from Redis once their length has passed', async () => {
    const tight = window(3, MINUTE);
    await windows().reserve([tight], 'a', Date.now());
    const ttl = await redis.pttl(`windows:${tight.id}`);
    expect(ttl).toBeGreaterThan(MINUTE - 5_000);
    expect(ttl).toBeLessThanOrEqual(MINUTE);
  });
});
