import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isDependencyOutage } from '@platform/errors';
import { createLogger } from '@platform/logger';
import { createTcpProxy, urlThrough, eventually, type TcpProxy } from '@platform/testing';
import { createRedis, type Redis } from './redis';

const redisUrl = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const target = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) };
const keyPrefix = `test:redis-${randomBytes(4).toString('hex')}:`;
const logger = createLogger({ name: 'redis-test', level: 'silent' });

/** How long `attempt` took to settle, and how (its error, if it failed). */
async function timed(attempt: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  let error: unknown;
  try {
    await attempt();
  } catch (thrown) {
    error = thrown ?? new Error('rejected without a reason');
  }
  return { ms: performance.now() - started, error };
}

describe('Redis client through an outage', () => {
  let proxy: TcpProxy;
  let redis: Redis;

  beforeAll(async () => {
    proxy = await createTcpProxy(target);
    redis = await createRedis({ url: urlThrough(redisUrl, proxy.port), keyPrefix, logger });
  });

  afterEach(() => proxy.restore());

  afterAll(async () => {
    await redis.del('counter', 'greeting').catch(() => undefined);
    redis.disconnect();
    await proxy.close();
  });

  it('fails every command fast while Redis is cut off, and works again once it is back', async () => {
    await redis.set('greeting', 'hello');
    proxy.cut();
    // Commands sent at the moment of the cut, and for as long as it lasts (across the
    // client's reconnection attempts), fail quickly with an error recognised as an outage
    // (answered SERVICE_UNAVAILABLE).
    for (let attempt = 0; attempt < 5; attempt++) {
      const { ms, error } = await timed(() => redis.get('greeting'));
      expect(isDependencyOutage(error), String(error)).toBe(true);
      expect(ms).toBeLessThan(2_000);
      await new Promise((resolve) => redis.once('reconnecting', resolve));
    }
    // Many at once do not queue up behind each other.
    const burst = await timed(() =>
      Promise.allSettled(Array.from({ length: 200 }, () => redis.incr('counter'))),
    );
    expect(burst.ms).toBeLessThan(2_000);

    proxy.restore();
    const started = Date.now();
    await eventually(async () => expect(await redis.get('greeting')).toBe('hello'), 5_000, 50);
    expect(Date.now() - started).toBeLessThan(3_000);
    // Nothing sent during the outage was executed late.
    expect(await redis.get('counter')).toBeNull();
  });

  it('fails a command in flight when the connection drops, and does not send it again', async () => {
    await redis.del('counter');
    const inFlight = redis.eval(
      // Takes ~300 ms in Redis: the cut lands while it runs.
      "local t = redis.call('TIME'); local until_ = t[1] * 1000000 + t[2] + 300000; repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_; return redis.call('INCR', KEYS[1])",
      1,
      'counter',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    proxy.cut();
    const { error } = await timed(() => inFlight);
    expect(isDependencyOutage(error), String(error)).toBe(true);
    proxy.restore();
    await eventually(async () => expect(await redis.get('counter')).toBe('1'), 5_000, 50);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await redis.get('counter')).toBe('1');
  });
});

describe('Redis client on a connection that stops answering', () => {
  it('times commands out, drops the dead connection and reconnects', async () => {
    const proxy = await createTcpProxy(target);
    const redis = await createRedis({
      url: urlThrough(redisUrl, proxy.port),
      keyPrefix,
      logger,
      commandTimeoutMs: 500,
    });
    try {
      await redis.set('greeting', 'hello');
      proxy.silence(true);
      const { ms, error } = await timed(() => redis.get('greeting'));
      expect(isDependencyOutage(error), String(error)).toBe(true);
      expect(ms).toBeLessThan(1_000);

      proxy.silence(false);
      // The silent connection is given up (no reply for twice the command timeout) and a new
      // one carries the commands.
      await eventually(async () => expect(await redis.get('greeting')).toBe('hello'), 5_000, 50);
    } finally {
      await redis.del('greeting').catch(() => undefined);
      redis.disconnect();
      await proxy.close();
    }
  });
});
