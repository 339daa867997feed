import type { Result } from 'ioredis';
import type { Redis } from '@platform/redis';

/** A sliding window of password guesses: at most `limit` in any `windowMs`. */
export interface GuessBucket {
  /** Which bucket, e.g. `client:<digest>`; the repository adds its own key prefix. */
  id: string;
  limit: number;
  windowMs: number;
}

/** The password guard's counters and known devices, in Redis (shared by every instance). */
export interface GuessRepository {
  /**
   * One atomic step: if every bucket has room at `nowMs`, records the reservation in all of
   * them and answers 0; otherwise records nothing and answers how many ms until the fullest
   * one has room again. However many reservations race, no bucket ever holds more than its
   * limit within its window.
   */
  reserve(buckets: GuessBucket[], reservationId: string, nowMs: number): Promise<number>;
  /** Takes a reservation back out of its buckets (a right password is not a guess). */
  release(bucketIds: string[], reservationId: string): Promise<void>;
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

// Each bucket is a sorted set of reservation ids scored by time. Every bucket is checked
// before any is written, so a reservation is all or nothing.
// KEYS: the buckets. ARGV: reservation id, now (ms), then limit and window (ms) per bucket.
const RESERVE = `
local now = tonumber(ARGV[2])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]) or now
    wait = math.max(wait, oldest + window - now, 1)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 0
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    authReserveGuess(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<number, Context>;
  }
}

const bucketKey = (id: string) => `auth:guesses:${id}`;
const devicesKey = (account: string) => `auth:devices:${account}`;

export function createGuessRepository(redis: Redis): GuessRepository {
  redis.defineCommand('authReserveGuess', { lua: RESERVE });
  return {
    reserve(buckets, reservationId, nowMs) {
      const keys = buckets.map((bucket) => bucketKey(bucket.id));
      const limits = buckets.flatMap((bucket) => [bucket.limit, bucket.windowMs]);
      return redis.authReserveGuess(keys.length, ...keys, reservationId, nowMs, ...limits);
    },
    async release(bucketIds, reservationId) {
      await Promise.all(bucketIds.map((id) => redis.zrem(bucketKey(id), reservationId)));
    },
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
