import type { Result } from 'ioredis';
import { AppError, toAppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { KeyWatch, Redis } from '@platform/redis';
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
  /**
   * A watch of the ended sessions' key (`REVOKED_SESSIONS_KEY`). While it holds, a session
   * already found live (or ended) and points already leased from the caller's bucket are
   * answered in this process, without a round trip: see `createRequestBudget`.
   */
  endedSessions: KeyWatch;
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
   * shared by every gateway instance: in ONE Redis round trip, or none (see
   * `createRequestBudget`). The bucket is the user's only for a session that has not ended
   * and a token that has not expired; anything else (no token, an ended session, an expired
   * token) pays from its address's bucket, so a stolen token that was revoked cannot use up
   * its victim's budget. A cost above the bucket's size
   * takes the whole (full) bucket. When Redis lost the ended sessions, they are rebuilt first
   * and nothing is charged until then. When Redis cannot answer, it throws
   * SERVICE_UNAVAILABLE (fails closed): see docs/resilience.md.
   */
  charge(caller: BudgetCaller, cost: number): Promise<Admission>;
}

// KEYS: the ended sessions (see @platform/tokens, session-revocation.ts), the user's bucket,
// the address's bucket. ARGV: capacity, rate, cost, '1' when a token came (else '0': the
// address pays), the set's complete marker, the session id, '1' when the token has not
// expired, the points wanted (a lease: at least the cost), points given back (the unspent
// rest of this gateway's lease) and the KEYS index of the bucket they came from (given back
// only if that bucket is the one charged). Returns {ended, wait, granted}; {-1, 0, 0} when the
// set lacks its marker (Redis lost it: rebuild, then ask again), charging nothing.
// The bucket is one hash (tokens, ms), refilled from Redis's own clock so that gateway
// instances with skewed clocks agree; it expires once it would be full again.
const ADMIT = `
local ended = 0
local key = KEYS[3]
if ARGV[4] == '1' then
  local scores = redis.call('ZMSCORE', KEYS[1], ARGV[5], ARGV[6])
  if not scores[1] then return {-1, 0, 0} end
  if scores[2] then ended = 1 end
  if ended == 0 and ARGV[7] == '1' then key = KEYS[2] end
end
local refund = 0
if key == KEYS[tonumber(ARGV[10])] then refund = tonumber(ARGV[9]) end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), capacity)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'ms')
local tokens = tonumber(state[1]) or capacity
local since = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + refund + math.max(0, now - since) * rate / 1000)
local wait = 0
local granted = 0
if tokens >= cost then
  granted = math.floor(math.min(tokens, math.max(cost, tonumber(ARGV[8]))))
  tokens = tokens - granted
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ms', now)
redis.call('PEXPIRE', key, math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return {ended, wait, granted}
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
      wanted: number,
      refund: number,
      refundTo: '2' | '3',
    ): Result<[ended: -1 | 0 | 1, wait: number, granted: number], Context>;
  }
}

/** Sessions remembered at once, at most (a bound on memory; the oldest goes first). */
const REMEMBERED_SESSIONS = 100_000;
/** A lease unused this long is dropped, with its points (at most one lease's worth). */
const LEASE_IDLE_MS = 2_000;
/**
 * Operations of the cost being charged that a lease should pay for, when the bounds allow:
 * a dear operation (a page of 20 users costs about 220 points) would otherwise send every
 * second or third request to Redis for a new lease.
 */
const LEASE_OPERATIONS = 8;

/**
 * What this process knows of sessions: ended or not, as read from Redis while the watch held
 * and nothing changed since. Any change to the ended sessions (a session ended, the set lost
 * or rebuilt) forgets everything.
 */
function sessionMemory(watch: KeyWatch) {
  const known = new Map<string, boolean>();
  let generation = watch.generation;
  const current = () => {
    if (generation !== watch.generation) {
      known.clear();
      generation = watch.generation;
    }
    return known;
  };
  return {
    /** The generation a read from Redis starts at: undefined when none could be kept. */
    readAt: () => (watch.watching ? watch.generation : undefined),
    /** Whether the session ended, if known here now. */
    ended(sessionId: string): boolean | undefined {
      return watch.watching ? current().get(sessionId) : undefined;
    },
    remember(sessionId: string, ended: boolean, readAt: number | undefined) {
      if (readAt === undefined || readAt !== watch.generation || !watch.watching) return;
      const sessions = current();
      const oldest = sessions.size >= REMEMBERED_SESSIONS && sessions.keys().next();
      if (oldest && !oldest.done) sessions.delete(oldest.value);
      sessions.set(sessionId, ended);
    },
  };
}

/**
 * A per-caller budget of points in Redis (a token bucket), charged with each operation's
 * cost, so one caller's expensive operations use up their own budget and nobody else's.
 *
 * Most requests need no round trip. Each gateway leases points from a caller's bucket (a
 * tenth of a second of its refill, or eight times the operation's cost if more, but never more
 * than a second of refill or a tenth of the bucket) and spends them here, and remembers the sessions it checked while a watch of the ended sessions holds
 * (Redis reports every change to them). Nothing is spent beyond the bucket: a lease is taken
 * from it, and its unspent rest is given back with the next lease. A lease idle for two
 * seconds is dropped with its rest, so a caller served by several gateways may be refused by
 * one while another holds a lease of theirs (at most one lease's worth each). Without the
 * watch (its connection down, silent, or refused by the server) every request asks Redis.
 */
export function createRequestBudget(options: RequestBudgetOptions): RequestBudget {
  const { redis, revocations, perSecond, burst, logger } = options;
  const sessions = sessionMemory(options.endedSessions);
  const allowed: BudgetDecision = { allowed: true };
  if (perSecond === 0)
    return {
      // No budget: the session is still checked on every use.
      async charge({ session }) {
        const checkedAt = Date.now();
        if (!session) return { sessionEnded: false, checkedAt, decision: allowed };
        const readAt = sessions.readAt();
        let sessionEnded = sessions.ended(session.sessionId);
        if (sessionEnded === undefined) {
          sessionEnded = await revocations.isRevoked(session.sessionId);
          sessions.remember(session.sessionId, sessionEnded, readAt);
        }
        return { sessionEnded, checkedAt, decision: allowed };
      },
    };
  redis.defineCommand('gatewayAdmit', { numberOfKeys: 3, lua: ADMIT });
  // A lease: at least the cost; else a tenth of a second of refill, or what LEASE_OPERATIONS
  // such operations cost if more, but never above a second of refill or a tenth of the bucket
  // (what a caller may find held elsewhere, or lose with an idle lease).
  const leaseFloor = Math.max(1, Math.floor(Math.min(perSecond, burst) / 10));
  const leaseCeiling = Math.max(leaseFloor, Math.floor(Math.min(perSecond, burst / 10)));
  const leaseFor = (cost: number) =>
    Math.max(cost, Math.min(leaseCeiling, Math.max(leaseFloor, cost * LEASE_OPERATIONS)));
  /** Points leased from each bucket and not yet spent, and the leases being asked for. */
  const leases = new Map<string, { points: number; usedAt: number; renewing: number }>();
  let sweptAt = 0;
  let lastWarning = 0;

  const userBucket = (userId: string) => `gateway:budget:user:${userId}`;
  const addressBucket = (caller: BudgetCaller) =>
    `gateway:budget:address:${caller.clientAddress ?? 'unknown'}`;
  /** The bucket that pays: the user's for a live session and a token that has not expired. */
  const bucketOf = (caller: BudgetCaller, ended: boolean, now: number) =>
    caller.session && !ended && caller.session.expiresAt > now
      ? userBucket(caller.session.userId)
      : addressBucket(caller);

  function lease(bucket: string, now: number) {
    if (now - sweptAt > LEASE_IDLE_MS) {
      sweptAt = now;
      for (const [key, held] of leases)
        if (now - held.usedAt > LEASE_IDLE_MS && held.renewing === 0) leases.delete(key);
    }
    let held = leases.get(bucket);
    if (!held) leases.set(bucket, (held = { points: 0, usedAt: now, renewing: 0 }));
    held.usedAt = now;
    return held;
  }

  async function admit(
    caller: BudgetCaller,
    cost: number,
    now: number,
    readAt: number | undefined,
  ): Promise<[-1 | 0 | 1, number]> {
    const { session } = caller;
    // The bucket expected to pay gives back its lease's rest (taken out now: a concurrent
    // request cannot give the same points back twice).
    const expected = bucketOf(caller, (session && sessions.ended(session.sessionId)) ?? false, now);
    const held = lease(expected, now);
    const refund = held.points;
    held.points = 0;
    // A lease for the first request; those arriving while it is asked for take only their
    // cost, so a burst does not strand one lease per request. None without the watch: its
    // points could not be spent here.
    const first = held.renewing++ === 0;
    const wanted = first && readAt !== undefined ? leaseFor(cost) : cost;
    let answer: [-1 | 0 | 1, number, number];
    try {
      answer = await redis.gatewayAdmit(
        REVOKED_SESSIONS_KEY,
        userBucket(session?.userId ?? ''),
        addressBucket(caller),
        burst,
        perSecond,
        cost,
        session ? '1' : '0',
        session ? await revocations.currentMarker() : '',
        session?.sessionId ?? '',
        session && session.expiresAt > now ? '1' : '0',
        wanted,
        refund,
        expected === addressBucket(caller) ? '3' : '2',
      );
    } catch (error) {
      // Fails closed: an uncharged caller could spend without limit while Redis is away
      // (and every other answer needs Redis too: sessions, permissions, sign-in back-off).
      // The rest given back may or may not have reached the bucket: it is not kept here.
      if (Date.now() - lastWarning > 10_000) {
        lastWarning = Date.now();
        logger.warn({ err: error }, 'request budget unavailable; refusing requests');
      }
      throw AppError.unavailable(error);
    } finally {
      held.renewing--;
    }
    const [ended, wait, granted] = answer;
    const charged = ended === -1 ? undefined : bucketOf(caller, ended === 1, now);
    // Not given back (nothing charged, or another bucket paid): the rest is still this lease's.
    if (charged !== expected) held.points += refund;
    if (charged !== undefined) {
      if (wait === 0) lease(charged, now).points += granted - Math.min(cost, burst);
      if (session) sessions.remember(session.sessionId, ended === 1, readAt);
    }
    return [ended, wait];
  }

  /** The charge answered here, from a remembered session and a lease: undefined if it cannot. */
  function spendHere(caller: BudgetCaller, cost: number, now: number) {
    const ended = caller.session ? sessions.ended(caller.session.sessionId) : false;
    if (ended === undefined) return undefined;
    const held = leases.get(bucketOf(caller, ended, now));
    if (!held || held.points < cost) return undefined;
    held.points -= cost;
    held.usedAt = now;
    return ended;
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
      const readAt = sessions.readAt();
      if (readAt !== undefined) {
        const endedHere = spendHere(caller, Math.min(cost, burst), checkedAt);
        if (endedHere !== undefined) return answer(0, endedHere);
      }
      let [ended, wait] = await admit(caller, cost, checkedAt, readAt);
      if (ended !== -1) return answer(wait, ended === 1);
      // Redis lost the ended sessions: "not ended" means nothing until they are rebuilt.
      let outage: AppError | undefined;
      try {
        await revocations.rebuild();
        [ended, wait] = await admit(caller, cost, checkedAt, readAt);
        if (ended !== -1) return answer(wait, ended === 1);
        // Lost again at once, or the rebuild did not take: no answer rather than a wrong one.
        outage = AppError.unavailable();
      } catch (error) {
        outage = toAppError(error);
        if (outage.code !== 'SERVICE_UNAVAILABLE') throw error;
      }
      // The token is unchecked: its caller pays by address, and the plugin decides (a public
      // operation such as signing in again goes on anonymously; any other is refused, 503).
      [, wait] = await admit({ clientAddress: caller.clientAddress }, cost, checkedAt, readAt);
      return answer(wait, false, outage);
    },
  };
}
