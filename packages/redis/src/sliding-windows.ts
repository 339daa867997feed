import type { Result } from 'ioredis';
import type { Redis } from './redis';

/** A sliding window: at most `limit` reservations in any `windowMs`. */
export interface SlidingWindow {
  /** Which window, e.g. `client:<digest>`; the caller's key prefix is added to it. */
  id: string;
  limit: number;
  windowMs: number;
}

/** Counters of attempts over sliding windows, in Redis: every instance shares them. */
export interface SlidingWindows {
  /**
   * One atomic step: if every window has room at `nowMs`, records the reservation in all of
   * them and answers 0; otherwise records nothing and answers how many ms until the fullest
   * one has room again. However many reservations race, no window ever holds more than its
   * limit within its length, wherever its length begins (no calendar boundary to burst across).
   */
  reserve(windows: SlidingWindow[], reservationId: string, nowMs: number): Promise<number>;
  /** Takes a reservation back out of its windows (an attempt that turned out not to count). */
  release(windowIds: string[], reservationId: string): Promise<void>;
}

// Each window is a sorted set of reservation ids scored by time. Every window is checked
// before any is written, so a reservation is all or nothing.
// KEYS: the windows. ARGV: reservation id, now (ms), then limit and length (ms) per window.
const RESERVE = `
local now = tonumber(ARGV[2])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local held = redis.call('ZCARD', key)
  if held >= limit then
    -- Room comes when all but limit - 1 have aged out (more than the limit are held after the
    -- limit was lowered): the wait runs to the (held - limit + 1)th oldest.
    local last = redis.call('ZRANGE', key, held - limit, held - limit, 'WITHSCORES')[2]
    wait = math.max(wait, (tonumber(last) or now) + window - now, 1)
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
    reserveInSlidingWindows(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<number, Context>;
  }
}

/** Sliding windows under `keyPrefix` (after the client's own prefix). */
export function createSlidingWindows(redis: Redis, keyPrefix: string): SlidingWindows {
  redis.defineCommand('reserveInSlidingWindows', { lua: RESERVE });
  const keyOf = (id: string) => `${keyPrefix}${id}`;
  return {
    reserve(windows, reservationId, nowMs) {
      const keys = windows.map((window) => keyOf(window.id));
      const limits = windows.flatMap((window) => [window.limit, window.windowMs]);
      return redis.reserveInSlidingWindows(keys.length, ...keys, reservationId, nowMs, ...limits);
    },
    async release(windowIds, reservationId) {
      await Promise.all(windowIds.map((id) => redis.zrem(keyOf(id), reservationId)));
    },
  };
}
