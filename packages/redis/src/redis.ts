import { Redis } from 'ioredis';
import type { Logger } from '@platform/logger';

export type { Redis };

export interface RedisOptions {
  url: string;
  /** Prepended to every key, so deployments and test runs never see each other's data. */
  keyPrefix: string;
  logger: Logger;
  /** How long to wait for the first connection before failing. */
  connectTimeoutMs?: number;
  /**
   * Longest wait for any one command's reply: past it the command fails (a black-holed
   * connection, where nothing closes the socket, must not hold requests).
   */
  commandTimeoutMs?: number;
}

/** Longest wait between reconnection attempts: Redis is found again within this after it returns. */
const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * A connected Redis client with a key prefix, that fails fast while Redis is unreachable and
 * recovers by itself:
 * - after a drop it reconnects on its own (every second at most), and works again as soon
 *   as Redis answers, without a restart;
 * - meanwhile every command fails at once (no offline queue once connected), and a command
 *   in flight when the connection dropped fails too (it may or may not have run; it is never
 *   sent a second time);
 * - on a connection that silently stops answering, a command fails after `commandTimeoutMs`
 *   and the connection is dropped and opened again after twice that without a byte back.
 * These failures are what `isDependencyOutage` (@platform/errors) recognises: callers answer
 * SERVICE_UNAVAILABLE.
 */
export async function createRedis(options: RedisOptions): Promise<Redis> {
  const { logger } = options;
  const commandTimeout = options.commandTimeoutMs ?? 1_500;
  const redis = new Redis(options.url, {
    keyPrefix: options.keyPrefix,
    lazyConnect: true,
    // Commands issued in the same tick go out as one write (many requests in flight at once).
    enableAutoPipelining: true,
    // Until the first connection (and on copies made by `duplicate()`, which connect on first
    // use) commands wait for it; once connected, see `offline` below.
    enableOfflineQueue: true,
    // Commands in flight when the connection drops fail at that drop, not after reconnecting.
    maxRetriesPerRequest: 0,
    commandTimeout,
    socketTimeout: commandTimeout * 2,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS),
    // A primary demoted by a failover answers READONLY: reconnect (to whatever the address now
    // points at) rather than stay on it until a restart. 1 = reconnect, never resend.
    reconnectOnError: (error) => (/^READONLY /.test(error.message) ? 1 : false),
  });
  // Without the offline queue, a command sent while the connection is down fails at once
  // ("Stream isn't writeable") instead of waiting, unbounded, for a reconnection.
  const offline = (queue: boolean) => {
    redis.options.enableOfflineQueue = queue;
  };
  let up = false;
  let reported = false;
  redis.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnection attempt: reported once per outage.
    if (!reported) logger.error({ err: error }, 'redis connection error');
    reported = true;
  });
  redis.on('close', () => {
    if (!up) return;
    up = false;
    offline(false);
    if (!reported) logger.error('redis connection lost; reconnecting');
    reported = true;
  });
  redis.on('ready', () => {
    up = true;
    offline(true);
    if (reported) logger.info('redis connection restored');
    reported = false;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`Redis is unreachable at ${new URL(options.url).host}`, { cause: error });
  }
  return redis;
}
