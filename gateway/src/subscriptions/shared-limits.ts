import { randomUUID } from 'node:crypto';
import type { Result } from 'ioredis';
import type { Logger } from '@platform/logger';
import type { Redis } from '@platform/redis';

/** What a per-user limit counts: live connections or subscriptions. */
export type LeaseKind = 'connections' | 'subscriptions';

/**
 * Per-user limits every gateway instance counts against together: each connection or
 * subscription holds a lease in a Redis sorted set per user (member: instance, connection,
 * subscription; score: when the lease lapses). A lease is taken atomically against the limit
 * (one Lua script: drop lapsed leases, count, add), given back when its connection or
 * subscription ends, and renewed while it lasts, so the leases of an instance that died
 * without giving them back lapse within `leaseMs`.
 */
export interface SharedLimits {
  /** Takes a lease if the user holds fewer than `limit`; false when the limit is reached. */
  acquire(kind: LeaseKind, userId: string, lease: string, limit: number): Promise<boolean>;
  /** Gives a lease back (no-op if it is not held); never rejects (a failure is logged). */
  release(kind: LeaseKind, userId: string, lease: string): Promise<void>;
  /** A lease name unique to this instance (`<instance>:<parts>`). */
  leaseName(...parts: (string | number)[]): string;
  close(): void;
}

const ACQUIRE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`;

const RENEW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    gatewayLeaseAcquire(
      key: string,
      lease: string,
      limit: number,
      leaseMs: number,
    ): Result<number, Context>;
    gatewayLeaseRenew(key: string, leaseMs: number, ...leases: string[]): Result<number, Context>;
  }
}

const keyOf = (kind: LeaseKind, userId: string) => `gateway:${kind}:${userId}`;

export function createSharedLimits(options: {
  redis: Redis;
  logger: Logger;
  /** How long a lease lasts without renewal (renewed every third of it). */
  leaseMs?: number;
}): SharedLimits {
  const { redis, logger } = options;
  const leaseMs = options.leaseMs ?? 30_000;
  const instance = randomUUID();
  redis.defineCommand('gatewayLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE });
  redis.defineCommand('gatewayLeaseRenew', { numberOfKeys: 1, lua: RENEW });
  /** The leases this instance holds, by key. */
  const held = new Map<string, Set<string>>();

  const renewal = setInterval(() => {
    for (const [key, leases] of held)
      if (leases.size > 0)
        redis
          .gatewayLeaseRenew(key, leaseMs, ...leases)
          .catch((error: unknown) => logger.warn({ err: error }, 'could not renew limit leases'));
  }, leaseMs / 3);
  renewal.unref();

  return {
    leaseName: (...parts) => [instance, ...parts].join(':'),
    async acquire(kind, userId, lease, limit) {
      const key = keyOf(kind, userId);
      const taken = (await redis.gatewayLeaseAcquire(key, lease, limit, leaseMs)) === 1;
      if (taken) {
        const leases = held.get(key) ?? new Set<string>();
        leases.add(lease);
        held.set(key, leases);
      }
      return taken;
    },
    async release(kind, userId, lease) {
      const key = keyOf(kind, userId);
      const leases = held.get(key);
      leases?.delete(lease);
      if (leases?.size === 0) held.delete(key);
      // Not given back (Redis away): it lapses within leaseMs.
      await redis
        .zrem(key, lease)
        .catch((error: unknown) => logger.warn({ err: error, kind }, 'could not release a lease'));
    },
    close: () => clearInterval(renewal),
  };
}
