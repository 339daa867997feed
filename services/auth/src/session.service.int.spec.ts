import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis } from '@platform/redis';
import { createTcpProxy, eventually } from '@platform/testing';
import { createSessionRevocations, REVOKED_SESSIONS_KEY } from '@platform/tokens';
import { newSuccessorKey } from './opaque-token';
import { createSessionRepository } from './session.repository';
import { createSessionService, type SessionTokens } from './session.service';
import type { AuthTx } from './auth.transactions';
import { appErrorOf } from './testing/app-error';
import { createTestClock, fakeSigner } from './testing/auth.fakes';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';
import { holdLock, lockWaiters } from './testing/lock-holder';
import { lockUser } from './user-lock';

const GRACE_SECONDS = 10;

describe('SessionService against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();
  // Refresh compares times it writes itself, so a test clock can step past the grace window.
  const clock = createTestClock();
  const service = () =>
    wireOverWorld(world, { clock, policy: { reuseGraceSeconds: GRACE_SECONDS } }).sessions;

  const refresh = (token: string) => service().refresh(token, undefined);
  const sessionRow = (id: string) => world.db.session.findUniqueOrThrow({ where: { id } });
  const liveTokensOf = (sessionId: string) =>
    world.db.refreshToken.count({ where: { sessionId, rotatedAt: null } });
  const revokedEventsOf = async (sessionId: string) =>
    (await world.outboxEvents('auth.session_revoked')).filter(
      (event) => (event.payload as { sessionId: string }).sessionId === sessionId,
    );

  /** A session whose first refresh token was rotated longer ago than the grace window. */
  async function sessionWithStolenToken() {
    const opened = await service().open(randomUUID(), undefined);
    const current = await refresh(opened.refreshToken);
    clock.advance(GRACE_SECONDS + 1);
    return { stolen: opened.refreshToken, current, sessionId: opened.sessionId };
  }

  it('gives both of two simultaneous refreshes of one token the same successor, and both tabs stay signed in, every time', async () => {
    for (let round = 0; round < 20; round++) {
      const opened = await service().open(randomUUID(), undefined);
      const both = await Promise.all([refresh(opened.refreshToken), refresh(opened.refreshToken)]);
      expect(both.map((tokens) => tokens.sessionId)).toEqual([opened.sessionId, opened.sessionId]);
      expect(both[1].refreshToken).toBe(both[0].refreshToken);
      expect(both[0].refreshToken).not.toBe(opened.refreshToken);
      // The tabs go on: one rotates, the other follows within the window.
      const next = await refresh(both[0].refreshToken);
      expect((await refresh(both[1].refreshToken)).refreshToken).toBe(next.refreshToken);
      expect(await liveTokensOf(opened.sessionId)).toBe(1);
      expect(await revokedEventsOf(opened.sessionId)).toEqual([]);
    }
  });

  it('answers five simultaneous replays of a rotated token within the grace window with its successor, leaving one live token, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const opened = await service().open(randomUUID(), undefined);
      const owner = await refresh(opened.refreshToken);
      clock.advance(GRACE_SECONDS / 2);
      const replays = await Promise.all(
        Array.from({ length: 5 }, () => refresh(opened.refreshToken)),
      );
      expect(replays.map((tokens) => tokens.refreshToken)).toEqual(
        Array(5).fill(owner.refreshToken),
      );
      expect(replays.map((tokens) => tokens.sessionId)).toEqual(Array(5).fill(opened.sessionId));
      expect(await liveTokensOf(opened.sessionId)).toBe(1);
      expect(await revokedEventsOf(opened.sessionId)).toEqual([]);
    }
  });

  it('ends the session once, its access tokens too, when replays come after the grace window, even of a token a replay got, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const opened = await service().open(randomUUID(), undefined);
      const owner = await refresh(opened.refreshToken);
      const replayed = await refresh(opened.refreshToken);
      const ownerNext = await refresh(owner.refreshToken);
      clock.advance(GRACE_SECONDS + 1);

      const answers = await Promise.allSettled(
        Array.from({ length: 5 }, () => refresh(replayed.refreshToken)),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(5).fill('rejected'));
      expect((await revokedEventsOf(opened.sessionId)).map((event) => event.payload)).toEqual([
        { userId: opened.userId, sessionId: opened.sessionId, reason: 'refresh_token_reuse' },
      ]);
      expect(await world.revocations.isRevoked(opened.sessionId)).toBe(true);
      expect((await appErrorOf(refresh(ownerNext.refreshToken))).code).toBe('UNAUTHENTICATED');
    }
  });

  it('answers a replay on another instance with the same successor: every instance loads one key from the database', async () => {
    const instance = async () =>
      createSessionService({
        sessions: createSessionRepository(world.db),
        transactions: world.transactions,
        signer: fakeSigner,
        revocations: world.revocations,
        policy: {
          idleTtlSeconds: 3600,
          absoluteTtlSeconds: 4 * 3600,
          reuseGraceSeconds: 10,
          maxActiveSessions: 50,
        },
        successorKey: await createSessionRepository(world.db).ensureSuccessorKey(newSuccessorKey()),
        logger: createLogger({ name: 'auth-test', level: 'silent' }),
      });
    const [first, second] = await Promise.all([instance(), instance()]);
    for (let round = 0; round < 10; round++) {
      const opened = await first.open(randomUUID(), undefined);
      const tabs = await Promise.all([
        first.refresh(opened.refreshToken, undefined),
        second.refresh(opened.refreshToken, undefined),
      ]);
      expect(tabs[1].refreshToken).toBe(tabs[0].refreshToken);
      expect(await liveTokensOf(opened.sessionId)).toBe(1);
    }
  });

  it('ends the session when a rotated token comes back after the grace window: in PostgreSQL, the outbox and Redis', async () => {
    const { stolen, current, sessionId } = await sessionWithStolenToken();
    const kicks = world.relayKicks;

    expect((await appErrorOf(refresh(stolen))).code).toBe('UNAUTHENTICATED');
    expect(await sessionRow(sessionId)).toMatchObject({
      revokedAt: clock.now(),
      revokedReason: 'refresh_token_reuse',
    });
    expect((await revokedEventsOf(sessionId)).map((event) => event.payload)).toEqual([
      { userId: current.userId, sessionId, reason: 'refresh_token_reuse' },
    ]);
    expect(world.relayKicks).toBe(kicks + 1);
    expect(await world.revocations.isRevoked(sessionId)).toBe(true);
    // Kept as long as the session's access tokens could live, and a minute more.
    expect(Number(await world.redis.zscore(REVOKED_SESSIONS_KEY, sessionId))).toBeGreaterThan(
      Date.now() + 900_000,
    );
    expect((await appErrorOf(refresh(current.refreshToken))).code).toBe('UNAUTHENTICATED');
  });

  it('ends the session once when a stolen token is replayed many times at once, every time', async () => {
    for (let round = 0; round < 5; round++) {
      const { stolen, sessionId } = await sessionWithStolenToken();
      const answers = await Promise.allSettled(Array.from({ length: 6 }, () => refresh(stolen)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill('rejected'));
      expect(await revokedEventsOf(sessionId)).toHaveLength(1);
      expect(await world.revocations.isRevoked(sessionId)).toBe(true);
    }
  });

  it('never lets a refresh racing a logout outlive it, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const userId = randomUUID();
      const opened = await service().open(userId, undefined);
      const [refreshed] = await Promise.allSettled([
        refresh(opened.refreshToken),
        service().revoke(userId, opened.sessionId),
      ]);
      // Whether the refresh came first or not, nothing it may have issued still works.
      if (refreshed.status === 'fulfilled') {
        const later: SessionTokens = refreshed.value;
        expect((await appErrorOf(refresh(later.refreshToken))).code).toBe('UNAUTHENTICATED');
      }
      expect(await service().listActive(userId)).toEqual([]);
      expect(await revokedEventsOf(opened.sessionId)).toHaveLength(1);
      expect(await world.revocations.isRevoked(opened.sessionId)).toBe(true);
    }
  });

  it('ends each session once when two sign-outs everywhere race, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const userId = randomUUID();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await service().open(userId, undefined)).sessionId);
      const counts = await Promise.all([
        service().revokeAll(userId, 'logout_all', undefined),
        service().revokeAll(userId, 'logout_all', undefined),
      ]);
      expect(counts[0] + counts[1]).toBe(3);
      for (const id of ids) expect(await revokedEventsOf(id)).toHaveLength(1);
      expect((await world.revocations.revokedAmong(ids)).size).toBe(3);
    }
  });

  it('rolls a revocation back with its change: the session is not ended nor announced, and its tokens stay refused until the entry lapses (written before the commit: fail closed)', async () => {
    const userId = randomUUID();
    const { sessionId } = await service().open(userId, undefined);
    const failed = world.transactions.run(async (tx) => {
      await service().endWithin(tx, userId, {}, 'password_changed');
      throw new Error('the rest of the change failed');
    });
    await expect(failed).rejects.toThrow('the rest of the change failed');
    expect((await sessionRow(sessionId)).revokedAt).toBeNull();
    expect(await revokedEventsOf(sessionId)).toEqual([]);
    expect(await world.revocations.isRevoked(sessionId)).toBe(true);
  });

  it('finishes a revocation that reached Redis though its change rolled back: the session ends, is announced, and refreshes no more', async () => {
    const userId = randomUUID();
    const [ended, kept] = [
      await service().open(userId, undefined),
      await service().open(userId, undefined),
    ];
    // A logout whose Redis write timed out (reported failed, so it rolled back) but landed.
    const failed = world.transactions.run(async (tx) => {
      await service().endWithin(tx, userId, { only: ended.sessionId }, 'logout');
      throw new Error('the Redis write timed out');
    });
    await expect(failed).rejects.toThrow('the Redis write timed out');
    expect((await sessionRow(ended.sessionId)).revokedAt).toBeNull();
    // Without the sweep, the session would go on refreshing (tokens the copy refuses, until
    // its entry ages out and they work again).
    const refreshed = await refresh(ended.refreshToken);
    expect(refreshed.sessionId).toBe(ended.sessionId);

    // What the copy lists of this user's sessions (other tests leave entries of their own).
    const listed = (await world.revocations.listed()).filter((id) =>
      [ended.sessionId, kept.sessionId].includes(id),
    );
    expect(listed).toEqual([ended.sessionId]);
    expect(await service().completeListedRevocations(listed)).toBe(1);
    expect((await sessionRow(ended.sessionId)).revokedAt).not.toBeNull();
    expect((await sessionRow(kept.sessionId)).revokedAt).toBeNull();
    expect(await revokedEventsOf(ended.sessionId)).toEqual([
      expect.objectContaining({
        payload: { userId, sessionId: ended.sessionId, reason: 'revoked' },
      }),
    ]);
    expect((await appErrorOf(refresh(refreshed.refreshToken))).code).toBe('UNAUTHENTICATED');
    // Done once: the next turn finds nothing to end.
    expect(await service().completeListedRevocations(listed)).toBe(0);
  });

  it('fails a logout while Redis is unreachable and leaves nothing half done; works again once it is back', async () => {
    const { hostname, port } = new URL(world.run.redisUrl);
    const proxy = await createTcpProxy({ host: hostname, port: Number(port) });
    const redis = await createRedis({
      url: `redis://127.0.0.1:${proxy.port}`,
      keyPrefix: world.run.redisKeyPrefix,
      logger: createLogger({ name: 'auth-test', level: 'silent' }),
      connectTimeoutMs: 500,
    });
    try {
      const cut = createSessionService({
        sessions: createSessionRepository(world.db),
        transactions: world.transactions,
        signer: fakeSigner,
        revocations: createSessionRevocations(redis, { rebuild: () => world.restorer.restore() }),
        policy: {
          idleTtlSeconds: 3600,
          absoluteTtlSeconds: 4 * 3600,
          reuseGraceSeconds: 10,
          maxActiveSessions: 50,
        },
        successorKey: await createSessionRepository(world.db).ensureSuccessorKey(newSuccessorKey()),
        logger: createLogger({ name: 'auth-test', level: 'silent' }),
      });
      const userId = randomUUID();
      const { sessionId } = await cut.open(userId, undefined);

      proxy.cut();
      await expect(cut.revoke(userId, sessionId)).rejects.toThrow();
      expect((await sessionRow(sessionId)).revokedAt).toBeNull();
      expect(await revokedEventsOf(sessionId)).toEqual([]);
      expect(await world.revocations.isRevoked(sessionId)).toBe(false);

      proxy.restore();
      await eventually(() => cut.revoke(userId, sessionId));
      expect((await sessionRow(sessionId)).revokedAt).not.toBeNull();
      expect(await revokedEventsOf(sessionId)).toHaveLength(1);
      expect(await world.revocations.isRevoked(sessionId)).toBe(true);
    } finally {
      redis.disconnect();
      await proxy.close();
    }
  });

  it("keeps other users' sign-ins going while one account's many sign-ins queue on its lock", async () => {
    const busy = randomUUID();
    // The account's lock held elsewhere (another instance's change, say): its sign-ins wait.
    const held = await holdLock(world.transactions, (tx) => lockUser(tx, busy));
    const admit = (userId: string) => async (tx: AuthTx) => lockUser(tx, userId);
    try {
      // More than the pool's transaction slots (half of 10).
      const queued = Array.from({ length: 8 }, () => service().open(busy, undefined, admit(busy)));
      for (const opening of queued) opening.catch(() => undefined);
      await eventually(async () => expect(await lockWaiters(world.db)).toBeGreaterThan(0));
      // Another user signs in meanwhile, and is not kept waiting for a slot the queue holds.
      const other = randomUUID();
      const opened = await service().open(other, undefined, admit(other));
      expect((await sessionRow(opened.sessionId)).userId).toBe(other);
      await held.release();
      // The account's own: each opened a session, or (waiting past its turn's limit, on a slow
      // machine) was told to retry; the one that waited at the lock opened.
      const outcomes = await Promise.allSettled(queued);
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled').length).toBeGreaterThan(
        0,
      );
      const refused = outcomes.flatMap((outcome) =>
        outcome.status === 'rejected' ? [(outcome.reason as { code?: unknown }).code] : [],
      );
      expect(refused).toEqual(refused.map(() => 'SERVICE_UNAVAILABLE'));
    } finally {
      await held.release().catch(() => undefined);
    }
  });
});
