import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@platform/errors';
import { createLogger } from '@platform/logger';
import { createRedis, watchKey, type KeyWatch, type Redis } from '@platform/redis';
import {
  createSessionRevocations,
  REVOKED_SESSIONS_KEY,
  type Identity,
  type RevokedSession,
  type SessionRevocations,
} from '@platform/tokens';
import { createRequestBudget, type BudgetCaller } from './request-budget';

const logger = createLogger({ name: 'budget-test', level: 'silent' });
const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
// Its own key prefix: runs never see each other's buckets.
const keyPrefix = `test:${randomUUID()}:`;

describe(createRequestBudget.name, () => {
  let instanceA: Redis;
  let instanceB: Redis;
  /** Each gateway instance's watch of the ended sessions. */
  const watches = new Map<Redis, KeyWatch>();

  beforeAll(async () => {
    instanceA = await createRedis({ url, keyPrefix, logger });
    instanceB = await createRedis({ url, keyPrefix, logger });
    for (const instance of [instanceA, instanceB])
      watches.set(instance, watchKey(instance, REVOKED_SESSIONS_KEY, { logger }));
    // Until each watch is armed, every request asks Redis (the local answers are tested here).
    while (![...watches.values()].every((watch) => watch.watching))
      await new Promise((resolve) => setTimeout(resolve, 10));
  });

  afterAll(async () => {
    for (const watch of watches.values()) watch.close();
    const keys = await instanceA.keys(`${keyPrefix}*`);
    if (keys.length) await instanceA.del(...keys.map((key) => key.slice(keyPrefix.length)));
    await instanceA.quit();
    await instanceB.quit();
  });

  /** The ended sessions as the database holds them: what a rebuild restores. */
  const endedInDatabase: RevokedSession[] = [];
  let rebuilds = 0;
  const revocationsOf = (redis: Redis): SessionRevocations => {
    const revocations = createSessionRevocations(redis, {
      rebuild: async () => {
        rebuilds++;
        await revocations.restore(endedInDatabase);
      },
    });
    return revocations;
  };

  const watchOf = (redis: Redis) => {
    const watch = watches.get(redis);
    if (!watch) throw new Error('no watch for this instance');
    return watch;
  };
  const budget = (redis: Redis, perSecond: number, burst: number, watch = watchOf(redis)) =>
    createRequestBudget({
      redis,
      revocations: revocationsOf(redis),
      endedSessions: watch,
      perSecond,
      burst,
      logger,
    });

  /** A caller presenting a genuine, unexpired token of a new session. */
  const signedIn = (
    userId: string = randomUUID(),
    expiresAt = Date.now() + 60_000,
  ): BudgetCaller => ({
    clientAddress: `203.0.113.7 (${randomUUID()})`,
    session: { userId, sessionId: randomUUID(), expiresAt } satisfies Identity,
  });
  const anonymous = (): BudgetCaller => ({ clientAddress: `198.51.100.9 (${randomUUID()})` });

  /** Charges `cost` and answers only the budget's decision. */
  const charge = async (bucket: ReturnType<typeof budget>, caller: BudgetCaller, cost: number) =>
    (await bucket.charge(caller, cost)).decision;

  it('lets a caller spend the burst at once, then refuses with the seconds until it may retry', async () => {
    const caller = signedIn();
    const bucket = budget(instanceA, 10, 100);
    expect(await charge(bucket, caller, 60)).toEqual({ allowed: true });
    expect(await charge(bucket, caller, 40)).toEqual({ allowed: true });
    // 50 points at 10 a second: 5 s (give or take the few points regained meanwhile).
    const refused = await charge(bucket, caller, 50);
    expect(refused.allowed).toBe(false);
    expect(refused).toMatchObject({ retryAfter: expect.any(Number) as number });
    expect(refused.allowed === false && refused.retryAfter).toBeGreaterThanOrEqual(4);
    expect(refused.allowed === false && refused.retryAfter).toBeLessThanOrEqual(5);
  });

  it("charges one caller's cost to that caller only", async () => {
    const bucket = budget(instanceA, 1, 100);
    const heavy = signedIn();
    expect(await charge(bucket, heavy, 100)).toEqual({ allowed: true });
    expect((await charge(bucket, heavy, 10)).allowed).toBe(false);
    // Another user from the same address, and the address itself, still have their budgets.
    expect(await charge(bucket, signedIn(), 100)).toEqual({ allowed: true });
    expect(await charge(bucket, { clientAddress: heavy.clientAddress }, 100)).toEqual({
      allowed: true,
    });
  });

  it('charges anonymous callers by their address', async () => {
    const bucket = budget(instanceA, 1, 100);
    const caller = anonymous();
    expect(await bucket.charge(caller, 100)).toMatchObject({
      sessionEnded: false,
      decision: { allowed: true },
    });
    expect((await charge(bucket, { ...caller }, 1)).allowed).toBe(false);
  });

  it('checks the session with the charge: an ended session pays from its address, never from its user', async () => {
    const bucket = budget(instanceA, 1, 100);
    const victim = signedIn();
    const stolen = { ...victim, clientAddress: '192.0.2.66' };
    await revocationsOf(instanceA).revoke([victim.session!.sessionId], 900);
    const answer = await bucket.charge(stolen, 100);
    expect(answer).toMatchObject({ sessionEnded: true, decision: { allowed: true } });
    expect((await charge(bucket, { clientAddress: '192.0.2.66' }, 1)).allowed).toBe(false);
    // The victim's budget is whole: a new session of theirs spends all of it.
    const renewed = signedIn(victim.session!.userId);
    expect(await bucket.charge(renewed, 100)).toMatchObject({
      sessionEnded: false,
      decision: { allowed: true },
    });
  });

  it('charges an expired token to its address, and says whether its session ended', async () => {
    const bucket = budget(instanceA, 1, 100);
    const expired = signedIn(randomUUID(), Date.now() - 1_000);
    expect(await bucket.charge(expired, 100)).toMatchObject({
      sessionEnded: false,
      decision: { allowed: true },
    });
    expect((await charge(bucket, { clientAddress: expired.clientAddress }, 1)).allowed).toBe(false);
    expect(await charge(bucket, signedIn(expired.session!.userId), 100)).toEqual({
      allowed: true,
    });
  });

  it('rebuilds the ended sessions when Redis lost them, and charges nothing before', async () => {
    const bucket = budget(instanceA, 1, 100);
    const ended = signedIn();
    // Ended in the database; Redis has just lost its copy (a restart without persistence).
    endedInDatabase.push({ sessionId: ended.session!.sessionId, ttlSeconds: 900 });
    await instanceA.del(REVOKED_SESSIONS_KEY);
    const before = rebuilds;
    const answers = await Promise.all([
      bucket.charge(ended, 100),
      bucket.charge({ ...ended, clientAddress: '192.0.2.67' }, 100),
    ]);
    expect(answers.map((answer) => answer.sessionEnded)).toEqual([true, true]);
    // Each address was charged its 100 points once: not also before the rebuild.
    expect(answers.map((answer) => answer.decision.allowed)).toEqual([true, true]);
    // Both found the set incomplete; one rebuild served both.
    expect(rebuilds - before).toBe(1);
    expect(await charge(bucket, signedIn(ended.session!.userId), 100)).toEqual({ allowed: true });
  });

  it('leaves the session unchecked, charging the address, when the rebuild fails or does not take', async () => {
    const revocations = revocationsOf(instanceA);
    for (const rebuild of [
      async () => undefined, // "took" but wrote no marker
      async () => {
        throw AppError.unavailable(new Error('14 UNAVAILABLE: auth service unreachable'));
      },
    ]) {
      const bucket = createRequestBudget({
        redis: instanceA,
        revocations: { ...revocations, rebuild },
        endedSessions: watchOf(instanceA),
        perSecond: 1,
        burst: 100,
        logger,
      });
      await instanceA.del(REVOKED_SESSIONS_KEY);
      const caller = signedIn();
      const answer = await bucket.charge(caller, 100);
      expect(answer).toMatchObject({
        sessionEnded: false,
        sessionUnchecked: { code: 'SERVICE_UNAVAILABLE' },
        decision: { allowed: true },
      });
      // Its address paid; its user did not.
      expect((await charge(bucket, { clientAddress: caller.clientAddress }, 1)).allowed).toBe(
        false,
      );
      await revocations.rebuild();
      expect(await charge(bucket, caller, 100)).toEqual({ allowed: true });
    }
  });

  it('is one budget across gateway instances', async () => {
    const caller = signedIn();
    expect(await charge(budget(instanceA, 1, 100), caller, 70)).toEqual({ allowed: true });
    expect((await charge(budget(instanceB, 1, 100), caller, 70)).allowed).toBe(false);
    expect(await charge(budget(instanceB, 1, 100), caller, 30)).toEqual({ allowed: true });
  });

  it('lets exactly the burst through when many requests arrive at once on two instances', async () => {
    const caller = signedIn();
    const [a, b] = [budget(instanceA, 0.001, 100), budget(instanceB, 0.001, 100)];
    const decisions = await Promise.all(
      Array.from({ length: 300 }, (_, n) => charge(n % 2 ? a : b, caller, 1)),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(100);
  });

  /** The caller's bucket as Redis holds it. */
  const stored = (caller: BudgetCaller) =>
    instanceA.hgetall(`gateway:budget:user:${caller.session?.userId ?? ''}`);

  it('spends leased points without a round trip, and sees a session end once Redis reports it', async () => {
    const caller = signedIn();
    // Leases of a tenth of a second's points: 100.
    const bucket = budget(instanceA, 1_000, 10_000);
    expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    const leased = await stored(caller);
    expect(Number(leased['tokens'])).toBeCloseTo(9_900, 0);
    for (let n = 0; n < 99; n++) expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    // The lease paid for those: the bucket in Redis is as the first request left it.
    expect(await stored(caller)).toEqual(leased);
    // The next one takes a new lease: the bucket in Redis changes.
    expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    expect(await stored(caller)).not.toEqual(leased);

    await revocationsOf(instanceB).revoke([caller.session!.sessionId], 900);
    // The session this instance remembers as live: ended as soon as Redis's notice arrives,
    // long before the lease (99 points left) would have sent the caller to Redis.
    let ended = false;
    for (let attempt = 0; attempt < 50 && !ended; attempt++) {
      ended = (await bucket.charge(caller, 1)).sessionEnded;
      if (!ended) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(ended).toBe(true);
  });

  it('leases enough for several dear operations, up to a second of refill and a tenth of the bucket', async () => {
    // A tenth of a second's refill is 100 points; a second's, 1,000; a tenth of the bucket, 2,000.
    const bucket = budget(instanceA, 1_000, 20_000);
    /** How many requests of `cost` one lease paid for: the first asks Redis, then until it changes. */
    const paidByOneLease = async (cost: number) => {
      const caller = signedIn();
      expect(await charge(bucket, caller, cost)).toEqual({ allowed: true });
      const leased = await stored(caller);
      let requests = 1;
      while (requests < 1_000) {
        expect(await charge(bucket, caller, cost)).toEqual({ allowed: true });
        if (!isDeepStrictEqual(await stored(caller), leased)) return requests;
        requests++;
      }
      return requests;
    };
    // Eight operations of 100 points: a lease of 800, where a tenth of a second's would pay one.
    expect(await paidByOneLease(100)).toBe(8);
    // Eight of 300 would be 2,400 points: the lease stops at a second of refill.
    expect(await paidByOneLease(300)).toBe(3);
    // Cheap operations: still a tenth of a second's refill per lease.
    expect(await paidByOneLease(2)).toBe(50);
  });

  /** Redis's own clock moved this many ms between two readings of a bucket. */
  const elapsed = (before: Record<string, string>, after: Record<string, string>) =>
    Number(after['ms']) - Number(before['ms']);

  it('gives the unspent rest of a lease back with the next one', async () => {
    const caller = signedIn();
    // Leases of 10 points from a bucket of 1,000 regaining 100 a second.
    const bucket = budget(instanceA, 100, 1_000);
    // Half the bucket (room for what comes back), then a lease of 10: 9 left in this process.
    expect(await charge(bucket, caller, 500)).toEqual({ allowed: true });
    expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    const before = await stored(caller);
    expect(await charge(bucket, caller, 400)).toEqual({ allowed: true });
    const after = await stored(caller);
    // Redis gave 400, regained its rate over the time between, and got the lease's 9 back.
    const regained = (elapsed(before, after) * 100) / 1_000;
    expect(Number(after['tokens']) - Number(before['tokens']) + 400 - regained).toBeCloseTo(9, 6);
  });

  /** A watch under the test's control: it holds, and its generation moves when told to. */
  const controlledWatch = () => {
    const watch = { watching: true, generation: 0, close: () => undefined };
    return watch satisfies KeyWatch;
  };

  it('does not remember a session read while Redis reported a change to the ended sessions', async () => {
    const watch = controlledWatch();
    const revocations = revocationsOf(instanceA);
    let reportWhileReading = true;
    const bucket = createRequestBudget({
      redis: instanceA,
      revocations: {
        ...revocations,
        // Sent with the read: a change is reported while the read is in flight.
        currentMarker: async () => {
          if (reportWhileReading) watch.generation++;
          reportWhileReading = false;
          return revocations.currentMarker();
        },
      },
      endedSessions: watch,
      perSecond: 1_000,
      burst: 10_000,
      logger,
    });
    const caller = signedIn();
    // Read as live, with a lease of 100 points: not remembered, the read may be stale.
    expect(await bucket.charge(caller, 1)).toMatchObject({ sessionEnded: false });
    await revocations.revoke([caller.session!.sessionId], 900);
    // The watch reports nothing more, yet the next request asks Redis about the session.
    expect(await bucket.charge(caller, 1)).toMatchObject({ sessionEnded: true });
  });

  it('keeps a lease with its own bucket when the session turns out to have ended', async () => {
    // Never reports: the session stays remembered as live until a request asks Redis.
    // Leases of 10 points from a bucket of 1,000 regaining 100 a second.
    const bucket = budget(instanceA, 100, 1_000, controlledWatch());
    const caller = signedIn();
    const addressKey = `gateway:budget:address:${caller.clientAddress ?? ''}`;
    // The address has spent 500 before (room for what could wrongly come back).
    expect(await charge(bucket, { clientAddress: caller.clientAddress }, 500)).toEqual({
      allowed: true,
    });
    // A lease of 10 from the user's bucket: 9 left in this process.
    expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    const user = await stored(caller);
    const address = await instanceA.hgetall(addressKey);
    await revocationsOf(instanceA).revoke([caller.session!.sessionId], 900);
    // Dearer than the lease: Redis finds the session ended and the address pays.
    expect(await bucket.charge(caller, 200)).toMatchObject({
      sessionEnded: true,
      decision: { allowed: true },
    });
    const paid = await instanceA.hgetall(addressKey);
    const regained = (elapsed(address, paid) * 100) / 1_000;
    // The address paid 200, and the user's 9 did not go to it; the user's bucket is untouched.
    expect(Number(paid['tokens']) - Number(address['tokens']) + 200 - regained).toBeCloseTo(0, 6);
    expect(await stored(caller)).toEqual(user);
  });

  it('lets no more than the bucket through when two instances lease from it at once', async () => {
    const caller = signedIn();
    // Leases of 10 points from a bucket of 1,000 regaining 100 a second.
    const [a, b] = [budget(instanceA, 100, 1_000), budget(instanceB, 100, 1_000)];
    const started = performance.now();
    const decisions = await Promise.all(
      Array.from({ length: 3_000 }, (_, n) => charge(n % 2 ? a : b, caller, 1)),
    );
    const regained = Math.ceil(((performance.now() - started) / 1_000) * 100);
    const through = decisions.filter((decision) => decision.allowed).length;
    expect(through).toBeLessThanOrEqual(1_000 + regained);
    // At most each instance's lease is left unspent (a burst takes one lease, not one each).
    expect(through).toBeGreaterThanOrEqual(1_000 - 2 * 10);
  });

  it('asks Redis for every request while the watch of the ended sessions does not hold', async () => {
    const unwatched = watchKey(instanceA, REVOKED_SESSIONS_KEY, { logger });
    unwatched.close();
    const caller = signedIn();
    const bucket = budget(instanceA, 1_000, 10_000, unwatched);
    expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    const before = await stored(caller);
    // No lease either: its points could not be spent here.
    expect(Number(before['tokens'])).toBe(9_999);
    expect(await charge(bucket, caller, 1)).toEqual({ allowed: true });
    expect(await stored(caller)).not.toEqual(before);
    await revocationsOf(instanceB).revoke([caller.session!.sessionId], 900);
    expect(await bucket.charge(caller, 1)).toMatchObject({ sessionEnded: true });
  });

  it('gives points back over time', async () => {
    const caller = signedIn();
    const bucket = budget(instanceA, 1_000, 50);
    expect(await charge(bucket, caller, 50)).toEqual({ allowed: true });
    expect(await charge(bucket, caller, 50)).toMatchObject({ allowed: false, retryAfter: 1 });
    let decision = await charge(bucket, caller, 10);
    while (!decision.allowed) decision = await charge(bucket, caller, 10);
    expect(decision).toEqual({ allowed: true });
  });

  it('lets an operation dearer than the whole bucket through when the bucket is full', async () => {
    const caller = signedIn();
    const bucket = budget(instanceA, 1, 100);
    expect(await charge(bucket, caller, 5_000)).toEqual({ allowed: true });
    expect((await charge(bucket, caller, 1)).allowed).toBe(false);
  });

  it('refuses with SERVICE_UNAVAILABLE when Redis cannot answer (fails closed)', async () => {
    const broken = await createRedis({ url, keyPrefix, logger });
    broken.disconnect();
    await expect(
      budget(broken, 1, 1, watchOf(instanceA)).charge(anonymous(), 1_000),
    ).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      retryAfter: 5,
    });
  });

  it('is off at 0 points a second, and still says whether a session ended', async () => {
    const bucket = budget(instanceA, 0, 1);
    for (let n = 0; n < 3; n++)
      expect(await charge(bucket, signedIn(), 1_000)).toEqual({ allowed: true });
    const ended = signedIn();
    await revocationsOf(instanceA).revoke([ended.session!.sessionId], 900);
    expect(await bucket.charge(ended, 1_000)).toMatchObject({
      sessionEnded: true,
      decision: { allowed: true },
    });
  });
});
