import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createTcpProxy, eventually, type TcpProxy } from '@platform/testing';
import { watchKey, type KeyWatch } from './key-watch';
import { createRedis, type Redis } from './redis';

const redisUrl = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const target = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) };
const keyPrefix = `test:watch-${randomBytes(4).toString('hex')}:`;
const logger = createLogger({ name: 'watch-test', level: 'silent' });

function through(port: number): string {
  const url = new URL(redisUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}

describe(watchKey.name, () => {
  let writer: Redis;
  let proxy: TcpProxy;
  let watched: Redis;
  let watch: KeyWatch;

  beforeAll(async () => {
    writer = await createRedis({ url: redisUrl.toString(), keyPrefix, logger });
    proxy = await createTcpProxy(target);
    // The watch's connection is a copy of this client's: it goes through the proxy too.
    watched = await createRedis({
      url: through(proxy.port),
      keyPrefix,
      logger,
      commandTimeoutMs: 300,
    });
    watch = watchKey(watched, 'sessions', { logger, heartbeatMs: 200 });
    await eventually(() => expect(watch.watching).toBe(true), 5_000, 20);
  });

  afterAll(async () => {
    watch.close();
    watched.disconnect();
    await writer.del('sessions', 'others', 'other').catch(() => undefined);
    writer.disconnect();
    await proxy.close();
  });

  /** The generation once every notice of the writes so far has arrived (they come in order). */
  async function settled(): Promise<number> {
    await writer.set('other', 'marker');
    const before = watch.generation;
    await writer.zincrby('sessions', 1, 'settle');
    await eventually(() => expect(watch.generation).toBeGreaterThan(before), 2_000, 5);
    return watch.generation;
  }

  it('moves on at every change of the key, as Redis reports it, and not for other keys', async () => {
    const start = await settled();
    await writer.set('other', 'changed');
    await writer.zadd('sessions', 1, 'session-a');
    await eventually(() => expect(watch.generation).toBe(start + 1), 2_000, 5);
    await writer.zadd('sessions', 2, 'session-b');
    await writer.del('sessions');
    await eventually(() => expect(watch.generation).toBe(start + 3), 2_000, 5);
    // Notices come in order: had the other key's write been reported, it would have come first.
    await writer.set('other', 'again');
    await writer.zadd('sessions', 3, 'session-c');
    await eventually(() => expect(watch.generation).toBe(start + 4), 2_000, 5);
    expect(watch.watching).toBe(true);
  });

  it('stops watching when its connection drops, and watches again under a new generation', async () => {
    const before = await settled();
    proxy.cut();
    await eventually(() => expect(watch.watching).toBe(false), 2_000, 5);
    // A change while unwatched is never reported; the generation has moved on anyway.
    await writer.zadd('sessions', 4, 'session-d');
    proxy.restore();
    await eventually(() => expect(watch.watching).toBe(true), 5_000, 20);
    expect(watch.generation).toBeGreaterThan(before);
    const rearmed = watch.generation;
    await writer.zadd('sessions', 5, 'session-e');
    await eventually(() => expect(watch.generation).toBe(rearmed + 1), 2_000, 5);
  });

  it('stops trusting a connection that goes silent, and watches again once it answers', async () => {
    const before = await settled();
    proxy.silence(true);
    // Nothing closed: only the missing heartbeat replies tell (two heartbeats).
    await eventually(() => expect(watch.watching).toBe(false), 2_000, 5);
    await writer.zadd('sessions', 6, 'session-f');
    proxy.silence(false);
    await eventually(() => expect(watch.watching).toBe(true), 5_000, 20);
    expect(watch.generation).toBeGreaterThan(before);
  });

  it('is never watching once closed', async () => {
    const other = watchKey(watched, 'others', { logger, heartbeatMs: 200 });
    await eventually(() => expect(other.watching).toBe(true), 5_000, 20);
    const before = other.generation;
    other.close();
    expect(other.watching).toBe(false);
    expect(other.generation).toBeGreaterThan(before);
  });
});
