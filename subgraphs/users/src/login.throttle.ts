import { AppError } from '@platform/errors';
import type { Redis } from '@platform/redis';

export interface ThrottlePolicy {
  /** Attempts per minute per client address on login, register and password reset; 0 = off. */
  perAddressPerMinute: number;
  /** Consecutive failures of one account before back-off starts. */
  freeFailures: number;
  /** Back-off never exceeds this. */
  maxDelaySeconds: number;
}

/**
 * Brute-force protection, in Redis so that every instance shares the counters. Accounts are
 * keyed by normalised email, so an unknown email backs off exactly like a real one.
 */
export interface LoginThrottle {
  /** Counts an attempt from `address`; RATE_LIMITED past the per-minute limit. */
  checkAddress(address: string | undefined): Promise<void>;
  /** RATE_LIMITED while the account is backing off. */
  checkAccount(email: string): Promise<void>;
  recordFailure(email: string): Promise<void>;
  recordSuccess(email: string): Promise<void>;
}

const FAILURES_TTL_SECONDS = 24 * 3600;

export function createLoginThrottle(redis: Redis, policy: ThrottlePolicy): LoginThrottle {
  const failuresKey = (email: string) => `throttle:failures:${email}`;
  const lockKey = (email: string) => `throttle:lock:${email}`;

  return {
    async checkAddress(address) {
      if (policy.perAddressPerMinute === 0 || !address) return;
      const window = Math.floor(Date.now() / 60_000);
      const key = `throttle:address:${address}:${window}`;
      const [[, count]] = (await redis.multi().incr(key).expire(key, 60).exec()) as [
        [null, number],
        unknown,
      ];
      if (count > policy.perAddressPerMinute) {
        throw AppError.rateLimited(60 - Math.floor((Date.now() % 60_000) / 1000));
      }
    },
    async checkAccount(email) {
      const remainingMs = await redis.pttl(lockKey(email));
      if (remainingMs > 0) throw AppError.rateLimited(Math.ceil(remainingMs / 1000));
    },
    async recordFailure(email) {
      const failures = await redis.incr(failuresKey(email));
      await redis.expire(failuresKey(email), FAILURES_TTL_SECONDS);
      if (failures >= policy.freeFailures) {
        const delaySeconds = Math.min(
          2 ** (failures - policy.freeFailures),
          policy.maxDelaySeconds,
        );
        await redis.set(lockKey(email), '1', 'EX', delaySeconds);
      }
    },
    async recordSuccess(email) {
      await redis.del(failuresKey(email), lockKey(email));
    },
  };
}
