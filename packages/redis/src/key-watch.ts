import type { Redis } from 'ioredis';
import type { Logger } from '@platform/logger';

/**
 * Redis's own notice of a change to a watched key (server-assisted client-side caching,
 * "broadcasting" mode), on a connection of its own.
 */
const INVALIDATIONS = '__redis__:invalidate';

/**
 * What lets a process answer from its own copy of something it read from one Redis key,
 * instead of asking Redis each time: Redis tells it when the key changes.
 *
 * A copy is good while `watching` holds and `generation` is the one it was read at (taken
 * BEFORE the read was sent): the generation moves on at every change of the key (a write, a
 * deletion, an expiry, an eviction, a flush) and whenever a change might have gone unseen (the
 * watch's connection dropped, was armed again, or stopped answering its heartbeat).
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
  /** How often the watch's connection is asked to answer; silent for two of these, it is not trusted. */
  heartbeatMs?: number;
}

/**
 * Watches `key` (as the client `redis` names it: its key prefix is added) on a connection of
 * its own, a copy of `redis`'s (same server, credentials and prefix), reconnecting by itself.
 * Needs Redis 6 or later (CLIENT TRACKING); a server that refuses it (an older one, or a managed
 * offering that renamed the command) is never watched, so every answer goes to Redis as before.
 */
export function watchKey(redis: Redis, key: string, options: KeyWatchOptions): KeyWatch {
  const { logger } = options;
  const heartbeatMs = options.heartbeatMs ?? 1_000;
  const fullKey = (redis.options.keyPrefix ?? '') + key;
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
  let lastAnswer = 0;
  let refused = false;

  const unwatch = () => {
    generation++;
    armed = false;
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
      generation++;
      armed = true;
      lastAnswer = Date.now();
    } catch (error) {
      unwatch();
      if (/^ERR /.test(error instanceof Error ? error.message : '')) {
        if (!refused) logger.warn({ err: error, key }, 'redis refuses key tracking; not watched');
        refused = true;
        return;
      }
      // The connection failed while arming: it reconnects, and arms again when ready.
      connection.disconnect(true);
    }
  }

  connection.on('ready', () => void arm());
  connection.on('close', unwatch);
  // Errors are the connection's: `close` follows them; the main client reports outages.
  connection.on('error', () => undefined);
  // The key changed (the notice names it), or the database was flushed (it names nothing).
  connection.on('messageBuffer', () => {
    generation++;
  });

  const heartbeat = setInterval(() => {
    if (!armed) return;
    connection.ping().then(
      () => {
        lastAnswer = Date.now();
      },
      () => {
        // Silent (a black-holed network): a change could be missed; start over.
        unwatch();
        if (!closed) connection.disconnect(true);
      },
    );
  }, heartbeatMs);
  heartbeat.unref();

  connection.connect().catch(() => undefined);

  return {
    get watching() {
      return armed && !closed && Date.now() - lastAnswer < 2 * heartbeatMs;
    },
    get generation() {
      return generation;
    },
    close() {
      closed = true;
      unwatch();
      clearInterval(heartbeat);
      connection.disconnect();
    },
  };
}
