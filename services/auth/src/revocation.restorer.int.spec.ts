import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { serverRunOf } from '@platform/redis';
import { completeMarker, REVOKED_SESSIONS_KEY } from '@platform/tokens';
import { createRevocationRestorer } from './revocation.restorer';
import { createSessionRepository } from './session.repository';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';

const MINUTE_MS = 60_000;
/** `fakeSigner`'s 900 s access tokens, and a minute. */
const ENTRY_TTL_MS = 960_000;

describe('RevocationRestorer against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();

  /** What Redis holds right now, read without any rebuild: the marker and these sessions. */
  async function copy(sessionIds: readonly string[]) {
    const [marker, ...scores] = await world.redis.zmscore(
      REVOKED_SESSIONS_KEY,
      completeMarker(await serverRunOf(world.redis).current()),
      ...sessionIds,
    );
    return { complete: marker !== null, scores: scores.map((score) => score && Number(score)) };
  }

  const loseEverything = () => world.redis.del(REVOKED_SESSIONS_KEY);

  it('rebuilds the sessions ended within the access-token lifetime, each kept for the time it has left', async () => {
    const now = Date.now();
    const recent = await world.newSession({ revokedAt: new Date(now - 10 * MINUTE_MS) });
    const old = await world.newSession({ revokedAt: new Date(now - 20 * MINUTE_MS) });
    const active = await world.newSession();
    await loseEverything();

    expect(await world.restorer.restore()).toBeGreaterThanOrEqual(1);

    const { complete, scores } = await copy([recent, old, active].map((s) => s.session.id));
    expect(complete).toBe(true);
    const [recentScore, oldScore, activeScore] = scores;
    const due = recent.session.revokedAt!.getTime() + ENTRY_TTL_MS;
    expect(recentScore).toBeGreaterThanOrEqual(due);
    expect(recentScore).toBeLessThan(due + 2_000);
    expect([oldScore, activeScore]).toEqual([null, null]);
  });

  it('rebuilds at start only when the copy lost its data', async () => {
    const ended = await world.newSession({ revokedAt: new Date() });
    await world.restorer.restore();
    expect(await world.restorer.restoreIfLost()).toBe(false);

    await loseEverything();
    expect(await world.restorer.restoreIfLost()).toBe(true);
    expect(await copy([ended.session.id])).toMatchObject({ complete: true });
    expect((await copy([ended.session.id])).scores[0]).not.toBeNull();
  });

  it('shares one rebuild among concurrent requests in a process, every time', async () => {
    let reads = 0;
    const sessions = createSessionRepository(world.db);
    const restorer = createRevocationRestorer({
      sessions: {
        endedSince: (since) => {
          reads++;
          return sessions.endedSince(since);
        },
      },
      revocations: world.revocations,
      entryTtlSeconds: ENTRY_TTL_MS / 1000,
    });
    for (let round = 0; round < 10; round++) {
      await loseEverything();
      const before = reads;
      const counts = await Promise.all(Array.from({ length: 20 }, () => restorer.restore()));
      expect(new Set(counts).size).toBe(1);
      expect(reads - before).toBe(1);
      expect((await copy([])).complete).toBe(true);
    }
  });

  it('loses no session ended while a rebuild runs, on any instance, every time', async () => {
    const instances = [wireOverWorld(world).sessions, wireOverWorld(world).sessions];
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const repository = createSessionRepository(world.db);
    // Rebuilds that take a while between reading the database and writing Redis, as a big one
    // does: sign-outs commit and write their entries in between.
    const restorers = [0, 1].map(() =>
      createRevocationRestorer({
        sessions: {
          async endedSince(since) {
            const ended = await repository.endedSince(since);
            await pause(30);
            return ended;
          },
        },
        revocations: world.revocations,
        entryTtlSeconds: ENTRY_TTL_MS / 1000,
      }),
    );
    for (let round = 0; round < 20; round++) {
      const userId = randomUUID();
      const opened = [];
      for (let i = 0; i < 6; i++)
        opened.push((await instances[i % 2]!.open(userId, undefined)).sessionId);
      const endedBefore = opened[0]!;
      await instances[0]!.revoke(userId, endedBefore);
      await loseEverything();

      // Sign-outs on both instances, spread over the rebuilds running on both.
      await Promise.all([
        ...opened.slice(1, 5).map(async (sessionId, i) => {
          await pause(i * 10);
          await instances[i % 2]!.revoke(userId, sessionId);
        }),
        ...restorers.map((restorer) => restorer.restore()),
      ]);

      const { complete, scores } = await copy(opened);
      expect(complete).toBe(true);
      // Every session ended, before the loss or during the rebuild, is there; the live one not.
      expect(scores.map((score) => score !== null)).toEqual([true, true, true, true, true, false]);
    }
  });
});
