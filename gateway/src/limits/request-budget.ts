import type { Result } from 'ioredis';
import { AppError, toAppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { Redis } from '@platform/redis';
import { REVOKED_SESSIONS_KEY, type Identity, type SessionRevocations } from '@platform/tokens';

/** The per-caller budget; see docs/security.md, "Operation limits". */
export interface RequestBudgetOptions {
  redis: Redis;
  /** Ended sessions: a token's session is checked in the same round trip as the charge. */
  revocations: Pick<SessionRevocations, 'currentMarker' | 'rebuild' | 'isRevoked'>;
  /** Points a caller regains per second; 0 turns the budget off. */
  perSecond: number;
  /** Points a caller may spend at once (the bucket's size); a fresh caller starts full. */
  burst: number;
  logger: Logger;
}

export type BudgetDecision = { allowed: true } | { allowed: false; retryAfter: number };

/** Who asks: always from an address, and with the identity of a genuine token if one came. */
export interface BudgetCaller {
  clientAddress?: string | undefined;
  /**
   * A genuine token's identity (signature and claims checked), its session not yet: the charge
   * checks it in the same round trip.
   */
  session?: Identity | undefined;
}

export interface Admission {
  /** Whether the session of `caller.session` ended (false without one). */
  sessionEnded: boolean;
  /**
   * Set when the session could not be checked: Redis lost the ended sessions and they could
   * not be rebuilt (the auth service unreachable). The token is then neither accepted nor
   * called invalid (the caller was charged by address), as when its keys cannot be fetched.
   */
  sessionUnchecked?: AppError | undefined;
  /** The instant the token's expiry was judged at (epoch ms): judge it again at this one. */
  checkedAt: number;
  decision: BudgetDecision;
}

export interface RequestBudget {
  /**
   * Checks the caller's session, if any, and takes `cost` points from the caller's bucket,
   * shared by every gateway instance: in ONE Redis round trip. The bucket is the user's only
   * for a session that has not ended and a token that has not expired; anything else (no
   * token, an ended session, an expired token) pays from its address's bucket, so a stolen
   * token that was revoked cannot use up its victim's budget. A cost above the bucket's size
   * takes the whole (full) bucket. When Redis lost the ended sessions, they are rebuilt first
   * and nothing is charged until then. When Redis cannot answer, it throws
   * SERVICE_UNAVAILABLE (fails closed): see docs/resilience.md.
   */
  charge(caller: BudgetCaller, cost: number): Promise<Admission>;
}

// KEYS: the ended sessions (see @platform/tokens, session-revocation.ts), the user's bucket,
// the address's bucket. ARGV: capacity, rate, cost, '1' when a token came (else '0': the
// address pays), the set's complete marker, the session id, '1' when the token has not
// expired. Returns {ended, wait}; {-1, 0} when the set lacks its marker (Redis lost it:
// rebuild, then ask again), charging nothing.
// The bucket is one hash (tokens, ms), refilled from Redis's own clock so that gateway
// instances with skewed clocks agree; it expires once it would be full again.
const ADMIT = `
local ended = 0
local key = KEYS[3]
if ARGV[4] == '1' then
  local scores = redis.call('ZMSCORE', KEYS[1], ARGV[5], ARGV[6])
  if not scores[1] then return {-1, 0} end
  if scores[2] then ended = 1 end
  if ended == 0 and ARGV[7] == '1' then key = KEYS[2] end
end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), capacity)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'ms')
local tokens = tonumber(state[1]) or capacity
local since = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - since) * rate / 1000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ms', now)
redis.call('PEXPIRE', key, math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return {ended, wait}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    gatewayAdmit(
      revokedSessionsKey: string,
      userBucketKey: string,
      addressBucketKey: string,
      capacity: number,
      perSecond: number,
      cost: number,
      withToken: '0' | '1',
      completeMarker: string,
      sessionId: string,
      unexpired: '0' | '1',
    ): Result<[ended: -1 | 0 | 1, wait: number], Context>;
  }
}

/**
 * A per-caller budget of points in Redis (a token bucket), charged with each operation's
 * cost, so one caller's expensive operations use up their own budget and nobody else's.
 */
export function createRequestBudget(options: RequestBudgetOptions): RequestBudget {
  const { redis, revocations, perSecond, burst, logger } = options;
  const allowed: BudgetDecision = { allowed: true };
  if (perSecond === 0)
    return {
      // No budget: the session is still asked on every use.
      charge: async ({ session }) => ({
        sessionEnded: session ? await revocations.isRevoked(session.sessionId) : false,
        checkedAt: Date.now(),
        decision: allowed,
      }),
    };
  redis.defineCommand('gatewayAdmit', { numberOfKeys: 3, lua: ADMIT });
  let lastWarning = 0;

  async function admit(
    caller: BudgetCaller,
    cost: number,
    now: number,
  ): Promise<[-1 | 0 | 1, number]> {
    const { session } = caller;
    try {
      return await redis.gatewayAdmit(
        REVOKED_SESSIONS_KEY,
        `gateway:budget:user:${session?.userId ?? ''}`,
        `gateway:budget:address:${caller.clientAddress ?? 'unknown'}`,
        burst,
        perSecond,
        cost,
        session ? '1' : '0',
        session ? await revocations.currentMarker() : '',
        session?.sessionId ?? '',
        session && session.expiresAt > now ? '1' : '0',
      );
    } catch (error) {
      // Fails closed: an uncharged caller could spend without limit while Redis is away
      // (and every other answer needs Redis too: sessions, permissions, sign-in back-off).
      if (Date.now() - lastWarning > 10_000) {
        lastWarning = Date.now();
        logger.warn({ err: error }, 'request budget unavailable; refusing requests');
      }
      throw AppError.unavailable(error);
    }
  }

  return {
    async charge(caller, cost) {
      const checkedAt = Date.now();
      const answer = (wait: number, sessionEnded: boolean, sessionUnchecked?: AppError) => ({
        sessionEnded,
        sessionUnchecked,
        checkedAt,
        decision: wait === 0 ? allowed : { allowed: false, retryAfter: Math.ceil(wait / 1000) },
      });
      let [ended, wait] = await admit(caller, cost, checkedAt);
      if (ended !== -1) return answer(wait, ended === 1);
      // Redis lost the ended sessions: "not ended" means nothing until they are rebuilt.
      let outage: AppError | undefined;
      try {
        await revocations.rebuild();
        [ended, wait] = await admit(caller, cost, checkedAt);
        if (ended !== -1) return answer(wait, ended === 1);
        // Lost again at once, or the rebuild did not take: no answer rather than a wrong one.
        outage = AppError.unavailable();
      } catch (error) {
        outage = toAppError(error);
        if (outage.code !== 'SERVICE_UNAVAILABLE') throw error;
      }
      // The token is unchecked: its caller pays by address, and the plugin decides (a public
      // operation such as signing in again goes on anonymously; any other is refused, 503).
      [, wait] = await admit({ clientAddress: caller.clientAddress }, cost, checkedAt);
      return answer(wait, false, outage);
    },
  };
}
