import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { Redis as RawRedis } from 'ioredis';
import {
  createTcpProxy,
  urlThrough,
  eventually,
  startRedisServer,
  type TcpProxy,
} from '@platform/testing';
import { watchKey, type KeyWatch } from './key-watch';
import { createRedis, type Redis } from './redis';

const redisUrl = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const target = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) };
const keyPrefix = `test:watch-${randomBytes(4).toString('hex')}:`;
const logger = createLogger({ name: 'watch-test', level: 'silent' });

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
      url: urlThrough(redisUrl, proxy.port),
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

  it('is never watching once closed', async () => {
    const other = watchKey(watched, 'others', { logger, heartbeatMs: 200 });
    await eventually(() => expect(other.watching).toBe(true), 5_000, 20);
    const before = other.generation;
    other.close();
    expect(other.watching).toBe(false);
    expect(other.generation).toBeGreaterThan(before);
  });

  it('stops trusting a connection that goes silent, however long its commands may wait', async () => {
    const silent = await createTcpProxy(target);
    // Commands wait up to 10 s: only the heartbeat can tell the silence.
    const client = await createRedis({
      url: urlThrough(redisUrl, silent.port),
      keyPrefix,
      logger,
      commandTimeoutMs: 10_000,
    });
    const own = watchKey(client, 'sessions', { logger, heartbeatMs: 200 });
    try {
      await eventually(() => expect(own.watching).toBe(true), 5_000, 20);
      const before = own.generation;
      silent.silence(true);
      // Nothing closed: the missing reports of its own writes tell, within two heartbeats.
      await eventually(() => expect(own.watching).toBe(false), 1_000, 5);
      await writer.zadd('sessions', 6, 'session-f');
      silent.silence(false);
      await eventually(() => expect(own.watching).toBe(true), 5_000, 20);
      // The write made meanwhile was reported once the connection spoke again.
      expect(own.generation).toBeGreaterThan(before);
    } finally {
      own.close();
      client.disconnect();
      await silent.close();
    }
  });

  it('stops watching when the client reaches another server than the watch (a failover)', async () => {
    const [old, promoted] = [await startRedisServer(), await startRedisServer()];
    const address = await createTcpProxy({ host: '127.0.0.1', port: old.port });
    const client = await createRedis({
      url: urlThrough(redisUrl, address.port),
      keyPrefix,
      logger,
    });
    const own = watchKey(client, 'sessions', { logger, heartbeatMs: 200 });
    const [onOld, onPromoted] = [new RawRedis(old.url), new RawRedis(promoted.url)];
    try {
      await eventually(() => expect(own.watching).toBe(true), 5_000, 20);
      // The address now leads to the promoted server; open connections stay where they are.
      address.retarget({ host: '127.0.0.1', port: promoted.port }, { keepOpen: true });
      // The client's connection alone drops (as a READONLY reply makes it reconnect).
      await onOld.call('CLIENT', 'KILL', 'ID', String(await client.client('ID')));
      await eventually(
        async () => {
          await client.set('on-promoted', '1');
          expect(await onPromoted.exists(`${keyPrefix}on-promoted`)).toBe(1);
        },
        5_000,
        20,
      );
      // The watch is still on the old server, which hears nothing of the client's writes: it
      // must not be trusted, now or for the next second (five heartbeats).
      for (const deadline = Date.now() + 1_000; Date.now() < deadline;) {
        expect(own.watching).toBe(false);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      own.close();
      client.disconnect();
      onOld.disconnect();
      onPromoted.disconnect();
      await address.close();
      await old.stop();
      await promoted.stop();
    }
  });

  it('does not watch, nor reconnect over and over, while an ACL refuses it; tries again later', async () => {
    const own = await startRedisServer();
    const admin = new RawRedis(own.url);
    // Redis 7's default for a new user: no pub/sub channels, so no invalidation channel.
    await admin.call('ACL', 'SETUSER', 'gateway', 'on', '>secret', '~*', '+@all', 'resetchannels');
    const url = new URL(own.url);
    url.username = 'gateway';
    url.password = 'secret';
    const client = await createRedis({ url: url.toString(), keyPrefix, logger });
    const refused = watchKey(client, 'sessions', {
      logger,
      heartbeatMs: 100,
      refusedRetryMs: 2_000,
    });
    try {
      const connections = async () =>
        Number(/total_connections_received:(\d+)/.exec(await admin.info('stats'))?.[1]);
      // The refusal is in Redis's ACL log once the watch's connection was refused its channel.
      await eventually(
        async () => expect(await admin.call('ACL', 'LOG')).not.toHaveLength(0),
        5_000,
        20,
      );
      const before = await connections();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(refused.watching).toBe(false);
      // One connection was refused its subscription; no new ones were opened to try again.
      expect((await connections()) - before).toBe(0);
      expect(await client.set('still-served', '1')).toBe('OK');
      // Once the channel is granted, the next try (on a new connection) watches.
      await admin.call('ACL', 'SETUSER', 'gateway', '&__redis__:invalidate');
      await eventually(() => expect(refused.watching).toBe(true), 5_000, 20);
    } finally {
      refused.close();
      client.disconnect();
      admin.disconnect();
      await own.stop();
    }
  });

  it('stops watching while its heartbeat writes are refused (out of memory), and watches again after', async () => {
    const own = await startRedisServer();
    const admin = new RawRedis(own.url);
    const client = await createRedis({ url: own.url, keyPrefix, logger });
    const full = watchKey(client, 'sessions', { logger, heartbeatMs: 100, refusedRetryMs: 500 });
    try {
      await eventually(() => expect(full.watching).toBe(true), 5_000, 20);
      // Writes refused (OOM), as a full Redis or a demoted primary (READONLY) refuses them.
      await admin.config('SET', 'maxmemory', '1');
      await eventually(() => expect(full.watching).toBe(false), 2_000, 10);
      await admin.config('SET', 'maxmemory', '0');
      await eventually(() => expect(full.watching).toBe(true), 5_000, 20);
    } finally {
      full.close();
      client.disconnect();
      admin.disconnect();
      await own.stop();
    }
  });
});
