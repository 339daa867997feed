import type { Result } from 'ioredis';
import { AppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { Redis } from '@platform/redis';

/** The per-caller budget; see docs/security.md, "Operation limits". */
export interface RequestBudgetOptions {
  redis: Redis;
  /** Points a caller regains per second; 0 turns the budget off. */
  perSecond: number;
  /** Points a caller may spend at once (the bucket's size); a fresh caller starts full. */
  burst: number;
  logger: Logger;
}

export type BudgetDecision = { allowed: true } | { allowed: false; retryAfter: number };

export interface RequestBudget {
  /**
   * Takes `cost` points from the caller's bucket, shared by every gateway instance. A cost
   * above the bucket's size takes the whole (full) bucket. When Redis cannot answer, it
   * throws SERVICE_UNAVAILABLE (fails closed): see docs/resilience.md.
   */
  charge(caller: string, cost: number): Promise<BudgetDecision>;
}

// A token bucket in one hash (tokens, ms), refilled from Redis's own clock so that gateway
// instances with skewed clocks agree; it expires once it would be full again.
const TAKE = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), capacity)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1]) or capacity
local since = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - since) * rate / 1000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return wait
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    gatewayBudgetTake(
      key: string,
      capacity: number,
      perSecond: number,
      cost: number,
    ): Result<number, Context>;
  }
}

/**
 * A per-caller budget of points in Redis (a token bucket), charged with each operation's
 * cost, so one caller's expensive operations use up their own budget and nobody else's.
 */
export function createRequestBudget(options: RequestBudgetOptions): RequestBudget {
  const { redis, perSecond, burst, logger } = options;
  if (perSecond === 0) return { charge: async () => ({ allowed: true }) };
  redis.defineCommand('gatewayBudgetTake', { numberOfKeys: 1, lua: TAKE });
  let lastWarning = 0;
  return {
    async charge(caller, cost) {
      let wait: number;
      try {
        wait = await redis.gatewayBudgetTake(`gateway:budget:${caller}`, burst, perSecond, cost);
      } catch (error) {
        // Fails closed: an uncharged caller could spend without limit while Redis is away
        // (and every other answer needs Redis too: sessions, permissions, sign-in back-off).
        if (Date.now() - lastWarning > 10_000) {
          lastWarning = Date.now();
          logger.warn({ err: error }, 'request budget unavailable; refusing requests');
        }
        throw AppError.unavailable(error);
      }
      return wait === 0
        ? { allowed: true }
        : { allowed: false, retryAfter: Math.ceil(wait / 1000) };
    },
  };
}
