import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '@platform/logger';

/**
 * Redis's own notice of a change to a watched key (server-assisted client-side caching,
 * "broadcasting" mode), on a connection of its own.
 */
const INVALIDATIONS = '__redis__:invalidate';
const MAX_PENDING_BEATS = 10;

/**
 * What lets a process answer from its own copy of something it read from one Redis key,
 * instead of asking Redis each time: Redis tells it when the key changes.
 *
 * A copy is good while `watching` holds and `generation` is the one it was read at (taken
 * BEFORE the read was sent): the generation moves on at every change of the key (a write, a
 * deletion, an expiry, an eviction, a flush) and whenever a change might have gone unseen (the
 * watch's connection dropped or was armed again, the client's own connection dropped).
 *
 * `watching` holds only while the watch proves, every heartbeat, that it hears of the writes
 * made through the client itself: the client writes a key of the watch's own under the watched
 * name, and the watch must receive Redis's notice of it. So a watch left on another server than
 * the client (a failover that moved the client, not the watch), a silent connection, or a
 * client that cannot write, all end it within two heartbeats.
 *
 * A change is known here once Redis's notice arrives, a moment after the write returned to its
 * writer: a copy may answer for that moment. Use it only where that is acceptable.
 */
export interface KeyWatch {
  /** Whether changes to the key are being reported now. */
  readonly watching: boolean;
  /** Moves on whenever a copy read before may no longer hold. */
  readonly generation: number;
  /** Stops watching (`watching` is then false for good). */
  close(): void;
}

export interface KeyWatchOptions {
  logger: Logger;
  /** How often the watch proves it hears the client's writes; two missed, it is not trusted. */
  heartbeatMs?: number;
  /** How long after a refusal the watch tries again, on a new connection (30 s). */
  refusedRetryMs?: number;
}

/**
 * Watches `key` (as the client `redis` names it: its key prefix is added) on a connection of
 * its own, a copy of `redis`'s (same server, credentials and prefix), reconnecting by itself.
 * Needs Redis 6 or later (CLIENT TRACKING) and, under ACLs, the right to subscribe to
 * `__redis__:invalidate` and to write `<key>:watch:*`. While a server refuses any of it, the
 * watch does not hold (logged, and tried again, every 30 s), so every answer goes to Redis.
 */
export function watchKey(redis: Redis, key: string, options: KeyWatchOptions): KeyWatch {
  const { logger } = options;
  const heartbeatMs = options.heartbeatMs ?? 1_000;
  const refusedRetryMs = options.refusedRetryMs ?? 30_000;
  const prefix = redis.options.keyPrefix ?? '';
  const fullKey = prefix + key;
  // The heartbeat's own keys: under the watched name (so Redis reports them), one per beat.
  const beatKey = `${key}:watch:${randomUUID()}:`;
  // RESP2: invalidations then arrive as pub/sub messages on the connection's own channel.
  const connection = redis.duplicate({
    protocol: 2,
    autoResubscribe: false,
    enableAutoPipelining: false,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  let generation = 0;
  let armed = false;
  let closed = false;
  let beat = 0;
  /** Beats written and not yet reported back: when each was sent. */
  const pending = new Map<number, number>();
  /**
   * When the latest beat reported back was sent (monotonic clock: a wall-clock step back must
   * not make an old beat look fresh): what the watch has heard of until then.
   */
  let heardUntil = -Infinity;

  const distrust = () => {
    generation++;
    heardUntil = -Infinity;
    pending.clear();
  };
  const unwatch = () => {
    armed = false;
    distrust();
  };

  let retry: NodeJS.Timeout | undefined;
  /**
   * A reply error (no CLIENT TRACKING, an ACL, or a passing one: READONLY after a failover, OOM)
   * is a refusal: logged, and the watch armed again on a new connection 30 s later, not at once
   * (a refusal for good would otherwise reconnect without end, and log as often).
   */
  const refusal = (error: unknown) => {
    if (!(error instanceof Error) || error.name !== 'ReplyError') return false;
    if (!retry) logger.warn({ err: error, key }, 'redis refuses to report changes; not watched');
    retry ??= setTimeout(() => {
      retry = undefined;
      if (!closed) connection.disconnect(true);
    }, refusedRetryMs).unref();
    return true;
  };

  async function arm(): Promise<void> {
    try {
      const id = await connection.client('ID');
      // Redirected to itself: the notices come on this connection, and stop with it.
      await connection.call(
        'CLIENT',
        'TRACKING',
        'ON',
        'REDIRECT',
        String(id),
        'BCAST',
        'PREFIX',
        fullKey,
      );
      await connection.subscribe(INVALIDATIONS);
      if (closed) return;
      // Changes made while arming may have gone unseen: nothing read before this counts.
      distrust();
      armed = true;
      heartbeat();
    } catch (error) {
      unwatch();
      if (refusal(error)) return;
      // The connection failed while arming: it reconnects, and arms again when ready.
      if (!closed) connection.disconnect(true);
    }
  }

  connection.on('ready', () => void arm());
  connection.on('close', unwatch);
  // Errors are the connection's: `close` follows them; the main client reports outages.
  connection.on('error', () => undefined);
  // The client's own connection dropped: what it reads next may come from another server.
  redis.on('close', distrust);
  connection.on('messageBuffer', (_channel: Buffer, keys: unknown) => {
    // A flush names no key: everything may have changed.
    if (!Array.isArray(keys)) {
      generation++;
      return;
    }
    for (const changed of keys as Buffer[]) {
      const name = changed.toString();
      if (name === fullKey) generation++;
      else if (name.startsWith(prefix + beatKey))
        heard(Number(name.slice(prefix.length + beatKey.length)));
    }
  });

  /** One of this watch's beats came back: everything written before it was sent is known. */
  function heard(sequence: number) {
    const sent = pending.get(sequence);
    if (sent === undefined) return;
    for (const earlier of pending.keys()) if (earlier <= sequence) pending.delete(earlier);
    heardUntil = Math.max(heardUntil, sent);
  }

  function heartbeat() {
    if (!armed || closed) return;
    const sequence = ++beat;
    pending.set(sequence, performance.now());
    // Beats that never come back (a watch left on another server) are not kept for ever.
    if (pending.size > MAX_PENDING_BEATS) pending.delete(sequence - MAX_PENDING_BEATS);
    // A key of its own per beat (gone after a few heartbeats), written through the client.
    redis.set(`${beatKey}${sequence}`, '1', 'PX', heartbeatMs * 5).catch((error: unknown) => {
      pending.delete(sequence);
      if (refusal(error)) unwatch();
    });
    // The watch's connection must answer too: a silent one is dropped and opened again.
    connection.ping().catch(() => {
      unwatch();
      if (!closed) connection.disconnect(true);
    });
  }
  const timer = setInterval(heartbeat, heartbeatMs);
  timer.unref();

  connection.connect().catch(() => undefined);

  return {
    get watching() {
      return armed && !closed && performance.now() - heardUntil < 2 * heartbeatMs;
    },
    get generation() {
      return generation;
    },
    close() {
      closed = true;
      unwatch();
      clearInterval(timer);
      clearTimeout(retry);
      redis.off('close', distrust);
      connection.disconnect();
    },
  };
}
