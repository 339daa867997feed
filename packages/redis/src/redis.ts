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
}

/**
 * A connected Redis client with a key prefix. Reconnects on its own after a drop; commands
 * issued meanwhile fail fast (after one retry window) instead of queueing without bound.
 */
export async function createRedis(options: RedisOptions): Promise<Redis> {
  const { logger } = options;
  const redis = new Redis(options.url, {
    keyPrefix: options.keyPrefix,
    lazyConnect: true,
    // Commands issued in the same tick go out as one write (many requests in flight at once).
    enableAutoPipelining: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 5_000),
  });
  let reported = false;
  redis.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnect attempt; report the outage once.
    if (!reported) logger.error({ err: error }, 'redis connection error');
    reported = true;
  });
  redis.on('ready', () => {
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
