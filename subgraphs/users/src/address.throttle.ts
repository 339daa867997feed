import { randomBytes } from 'node:crypto';
import { AppError } from '@platform/errors';
import { createSlidingWindows, type Redis } from '@platform/redis';

/**
 * Attempts per client address at the anonymous entry points (login, register, password
 * reset), in Redis so that every instance shares the counts. It stops one address spraying
 * many accounts; guesses at one account are limited by the auth service.
 */
export interface AddressThrottle {
  /** Counts an attempt from `address`; RATE_LIMITED past the limit in the last minute. */
  checkAddress(address: string | undefined): Promise<void>;
}

const MINUTE_MS = 60_000;

export function createAddressThrottle(
  redis: Redis,
  /** Attempts in any 60 s per client address; 0 = off. */
  perAddressPerMinute: number,
): AddressThrottle {
  const windows = createSlidingWindows(redis, 'throttle:address:');
  return {
    async checkAddress(address) {
      if (perAddressPerMinute === 0 || !address) return;
      // A sliding minute: no calendar minute's start lets a second burst through.
      const window = { id: address, limit: perAddressPerMinute, windowMs: MINUTE_MS };
      // Never released: a short random id tells this attempt apart from others of the same ms.
      const attempt = randomBytes(6).toString('base64url');
      const waitMs = await windows.reserve([window], attempt, Date.now());
      if (waitMs > 0) throw AppError.rateLimited(Math.ceil(waitMs / 1000));
    },
  };
}
