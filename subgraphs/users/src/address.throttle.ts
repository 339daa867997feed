import { AppError } from '@platform/errors';
import type { Redis } from '@platform/redis';

/**
 * Attempts per client address at the anonymous entry points (login, register, password
 * reset), in Redis so that every instance shares the counts. It stops one address spraying
 * many accounts; guesses at one account are limited by the auth service.
 */
export interface AddressThrottle {
  /** Counts an attempt from `address`; RATE_LIMITED past the per-minute limit. */
  checkAddress(address: string | undefined): Promise<void>;
}

export function createAddressThrottle(
  redis: Redis,
  /** Attempts per minute per client address; 0 = off. */
  perAddressPerMinute: number,
): AddressThrottle {
  return {
    async checkAddress(address) {
      if (perAddressPerMinute === 0 || !address) return;
      const window = Math.floor(Date.now() / 60_000);
      const key = `throttle:address:${address}:${window}`;
      const [[, count]] = (await redis.multi().incr(key).expire(key, 60).exec()) as [
        [null, number],
        unknown,
      ];
      if (count > perAddressPerMinute) {
        throw AppError.rateLimited(60 - Math.floor((Date.now() % 60_000) / 1000));
      }
    },
  };
}
