import {
  createSlidingWindows,
  type Redis,
  type SlidingWindow,
  type SlidingWindows,
} from '@platform/redis';

/** A sliding window of password guesses, e.g. `client:<digest>`: at most `limit` in any `windowMs`. */
export type GuessBucket = SlidingWindow;

/**
 * The password guard's counters and known devices, in Redis (shared by every instance): a
 * guess is reserved in its buckets, and released again when the password was right.
 */
export interface GuessRepository extends SlidingWindows {
  /** Whether `account` was given this device token (by its hash) and used it since `sinceMs`. */
  isKnownDevice(account: string, tokenHash: string, sinceMs: number): Promise<boolean>;
  /**
   * Remembers that `account` signed in with this device token at `nowMs`, keeping only its
   * `keep` most recent devices, and all of them no longer than `ttlSeconds` after their last use.
   */
  rememberDevice(
    account: string,
    tokenHash: string,
    nowMs: number,
    options: { keep: number; ttlSeconds: number },
  ): Promise<void>;
  /** Forgets every device `account` was given a token for. */
  forgetDevices(account: string): Promise<void>;
}

const devicesKey = (account: string) => `auth:devices:${account}`;

export function createGuessRepository(redis: Redis): GuessRepository {
  return {
    ...createSlidingWindows(redis, 'auth:guesses:'),
    async isKnownDevice(account, tokenHash, sinceMs) {
      const lastUsed = await redis.zscore(devicesKey(account), tokenHash);
      return lastUsed !== null && Number(lastUsed) > sinceMs;
    },
    async rememberDevice(account, tokenHash, nowMs, { keep, ttlSeconds }) {
      // A sorted set per account, newest last: its size is bounded whatever clients do.
      const key = devicesKey(account);
      await redis
        .multi()
        .zadd(key, nowMs, tokenHash)
        .zremrangebyscore(key, '-inf', nowMs - ttlSeconds * 1000)
        .zremrangebyrank(key, 0, -(keep + 1))
        .expire(key, ttlSeconds)
        .exec();
    },
    async forgetDevices(account) {
      await redis.del(devicesKey(account));
    },
  };
}
