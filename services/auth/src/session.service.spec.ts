import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newOpaqueToken } from './opaque-token';
import type { SessionPolicy } from './session.service';
import { wireOverFakes } from './testing/auth.wiring';
import { appErrorOf } from './testing/app-error';

function setUp(policy: Partial<SessionPolicy> = {}) {
  const { sessions: service, fakes } = wireOverFakes({ policy });
  const { clock, sessions, transactions, revocations } = fakes;
  const revokedEvents = () =>
    transactions.events.filter((event) => event.type === 'auth.session_revoked');
  return { clock, sessions, transactions, revocations, service, revokedEvents };
}

describe('SessionService', () => {
  describe('open', () => {
    it('issues an access token and a refresh token for a new session', async () => {
      const { service } = setUp();
      const userId = randomUUID();
      const tokens = await service.open(userId, 'Firefox');
      expect(tokens).toEqual({
        accessToken: `access:${userId}:${tokens.sessionId}`,
        refreshToken: expect.stringMatching(/^[\w-]{43}$/) as unknown,
        expiresIn: 900,
        userId,
        sessionId: tokens.sessionId,
      });
      expect((await service.listActive(userId)).map((session) => session.userAgent)).toEqual([
        'Firefox',
      ]);
    });

    it('ends the least recently used session once a user holds more than the limit', async () => {
      const { service, clock, revokedEvents, revocations } = setUp({ maxActiveSessions: 2 });
      const userId = randomUUID();
      const first = await service.open(userId, 'first');
      clock.advance(1);
      const second = await service.open(userId, 'second');
      clock.advance(1);
      const third = await service.open(userId, 'third');
      expect((await service.listActive(userId)).map((s) => s.id).sort()).toEqual(
        [second.sessionId, third.sessionId].sort(),
      );
      expect(revokedEvents().map((event) => event.payload)).toEqual([
        { userId, sessionId: first.sessionId, reason: 'session_limit' },
      ]);
      expect(revocations.entries.has(first.sessionId)).toBe(true);
    });

    it('lets a session sit idle no longer than it may live at all', async () => {
      const { service, sessions, clock } = setUp({ idleTtlSeconds: 10 * 3600 });
      const { sessionId } = await service.open(randomUUID(), undefined);
      const session = sessions.sessions.get(sessionId)!;
      expect(session.expiresAt.getTime() - clock.now().getTime()).toBe(4 * 3600 * 1000);
      expect(session.idleExpiresAt).toEqual(session.expiresAt);
    });

    it('keeps the first 500 characters of a user agent', async () => {
      const { service } = setUp();
      const userId = randomUUID();
      await service.open(userId, 'x'.repeat(600));
      const [session] = await service.listActive(userId);
      expect(session?.userAgent).toHaveLength(500);
    });
  });

  describe('refresh', () => {
    it('exchanges a refresh token for a new one and moves the idle expiry forward', async () => {
      const { service, sessions, clock } = setUp();
      const opened = await service.open(randomUUID(), 'Firefox');
      clock.advance(1800);
      const refreshed = await service.refresh(opened.refreshToken, 'Chrome');
      expect(refreshed.sessionId).toBe(opened.sessionId);
      expect(refreshed.refreshToken).not.toBe(opened.refreshToken);
      const session = sessions.sessions.get(opened.sessionId)!;
      expect(session.lastUsedAt).toEqual(clock.now());
      expect(session.idleExpiresAt.getTime()).toBe(clock.now().getTime() + 3600 * 1000);
      expect(session.userAgent).toBe('Chrome');
    });

    it('never moves the idle expiry past the end of the session', async () => {
      const { service, sessions, clock } = setUp();
      const { sessionId, ...opened } = await service.open(randomUUID(), undefined);
      let { refreshToken } = opened;
      for (let hour = 0; hour < 4; hour++) {
        clock.advance(3500);
        ({ refreshToken } = await service.refresh(refreshToken, undefined));
      }
      const session = sessions.sessions.get(sessionId)!;
      expect(session.idleExpiresAt).toEqual(session.expiresAt);
    });

    it('refuses what cannot be a token, an unknown token, and a token of an ended session', async () => {
      const { service, clock } = setUp();
      const userId = randomUUID();
      const idle = await service.open(userId, undefined);
      const revoked = await service.open(userId, undefined);
      await service.revoke(userId, revoked.sessionId);
      clock.advance(3601);
      for (const token of ['short', 'a'.repeat(43), idle.refreshToken, revoked.refreshToken]) {
        const error = await appErrorOf(service.refresh(token, undefined));
        expect(error.code).toBe('UNAUTHENTICATED');
        expect(error.message).toBe('Invalid or expired refresh token');
      }
    });

    it('gives a second tab that presents the same token within the grace window the token the first tab got', async () => {
      const { service, clock, revokedEvents } = setUp();
      const opened = await service.open(randomUUID(), undefined);
      const first = await service.refresh(opened.refreshToken, undefined);
      clock.advance(10);
      const second = await service.refresh(opened.refreshToken, undefined);
      expect(second).toEqual(first);
      // Either tab goes on as usual, and the other one follows within the window.
      const next = await service.refresh(second.refreshToken, undefined);
      expect(await service.refresh(first.refreshToken, undefined)).toEqual(next);
      expect(revokedEvents()).toEqual([]);
    });

    it('keeps one live token however often a rotated token is replayed within the grace window', async () => {
      const { service, sessions, clock } = setUp();
      const opened = await service.open(randomUUID(), undefined);
      const first = await service.refresh(opened.refreshToken, undefined);
      for (let replay = 0; replay < 5; replay++) {
        clock.advance(1);
        expect((await service.refresh(opened.refreshToken, undefined)).refreshToken).toBe(
          first.refreshToken,
        );
      }
      const live = [...sessions.tokens.values()].filter((token) => !token.rotatedAt);
      expect(live).toEqual([{ sessionId: opened.sessionId, rotatedAt: null, generation: 1 }]);
    });

    it('answers a replay within the grace window with the live token, however often the session rotated since', async () => {
      const { service, clock } = setUp();
      const opened = await service.open(randomUUID(), undefined);
      const chain = [opened.refreshToken];
      for (let rotation = 0; rotation < 3; rotation++) {
        clock.advance(2);
        chain.push((await service.refresh(chain.at(-1)!, undefined)).refreshToken);
      }
      for (const replayed of chain.slice(0, -1)) {
        expect((await service.refresh(replayed, undefined)).refreshToken).toBe(chain.at(-1));
      }
    });

    it('ends the session when the token a replay got comes back after it was rotated again and the window passed', async () => {
      const { service, clock, revocations, revokedEvents } = setUp();
      const userId = randomUUID();
      const opened = await service.open(userId, undefined);
      const owner = await service.refresh(opened.refreshToken, undefined);
      const replayed = await service.refresh(opened.refreshToken, undefined);
      const ownerNext = await service.refresh(owner.refreshToken, undefined);
      clock.advance(11);

      const error = await appErrorOf(service.refresh(replayed.refreshToken, undefined));
      expect(error.code).toBe('UNAUTHENTICATED');
      expect(revokedEvents().map((event) => event.payload)).toEqual([
        { userId, sessionId: opened.sessionId, reason: 'refresh_token_reuse' },
      ]);
      expect(await revocations.isRevoked(opened.sessionId)).toBe(true);
      expect((await appErrorOf(service.refresh(ownerNext.refreshToken, undefined))).code).toBe(
        'UNAUTHENTICATED',
      );
    });

    it('refuses a replay within the grace window whose chain does not lead to the live token, and leaves the session alone', async () => {
      const { service, sessions, revokedEvents } = setUp();
      const userId = randomUUID();
      const opened = await service.open(userId, undefined);
      // As if it had been rotated before successors were derived from their predecessors.
      const [firstHash] = sessions.tokens.keys();
      sessions.tokens.set(firstHash!, {
        sessionId: opened.sessionId,
        rotatedAt: new Date(),
        generation: 0,
      });
      sessions.tokens.set(newOpaqueToken().hash, {
        sessionId: opened.sessionId,
        rotatedAt: null,
        generation: 1,
      });

      const error = await appErrorOf(service.refresh(opened.refreshToken, undefined));
      expect(error.code).toBe('UNAUTHENTICATED');
      expect(revokedEvents()).toEqual([]);
      expect((await service.listActive(userId)).map((session) => session.id)).toEqual([
        opened.sessionId,
      ]);
    });

    it('ends the whole session when a rotated token comes back after the grace window', async () => {
      const { service, clock, revocations, revokedEvents } = setUp();
      const userId = randomUUID();
      const opened = await service.open(userId, undefined);
      const other = await service.open(userId, undefined);
      const rotated = await service.refresh(opened.refreshToken, undefined);
      clock.advance(11);

      const error = await appErrorOf(service.refresh(opened.refreshToken, undefined));
      expect(error.code).toBe('UNAUTHENTICATED');
      expect(revokedEvents().map((event) => event.payload)).toEqual([
        { userId, sessionId: opened.sessionId, reason: 'refresh_token_reuse' },
      ]);
      expect([...revocations.entries]).toEqual([[opened.sessionId, 900 + 60]]);
      // The thief's copy and the owner's current token are both dead; other sessions live.
      expect((await appErrorOf(service.refresh(rotated.refreshToken, undefined))).code).toBe(
        'UNAUTHENTICATED',
      );
      expect((await service.listActive(userId)).map((session) => session.id)).toEqual([
        other.sessionId,
      ]);
    });
  });

  describe('revoke', () => {
    it('ends one session of the user, announces it and stops its access tokens', async () => {
      const { service, revocations, revokedEvents } = setUp();
      const userId = randomUUID();
      const ended = await service.open(userId, undefined);
      const kept = await service.open(userId, undefined);
      await service.revoke(userId, ended.sessionId);
      expect((await service.listActive(userId)).map((session) => session.id)).toEqual([
        kept.sessionId,
      ]);
      expect(revokedEvents().map((event) => event.payload)).toEqual([
        { userId, sessionId: ended.sessionId, reason: 'revoked' },
      ]);
      expect(await revocations.isRevoked(ended.sessionId)).toBe(true);
    });

    it("answers NOT_FOUND for a malformed id, another user's session and an ended one", async () => {
      const { service, revocations, revokedEvents } = setUp();
      const userId = randomUUID();
      const theirs = await service.open(randomUUID(), undefined);
      const ended = await service.open(userId, undefined);
      await service.revoke(userId, ended.sessionId);
      for (const sessionId of ['not-an-id', theirs.sessionId, ended.sessionId, randomUUID()]) {
        expect((await appErrorOf(service.revoke(userId, sessionId))).code).toBe('NOT_FOUND');
      }
      expect(revokedEvents()).toHaveLength(1);
      expect(await revocations.isRevoked(theirs.sessionId)).toBe(false);
    });
  });

  describe('revokeAll', () => {
    it('ends every active session but the one named, with the reason given', async () => {
      const { service, revocations, revokedEvents } = setUp();
      const userId = randomUUID();
      const [a, b, kept] = [
        await service.open(userId, undefined),
        await service.open(userId, undefined),
        await service.open(userId, undefined),
      ];
      expect(await service.revokeAll(userId, 'user_disabled', kept.sessionId)).toBe(2);
      expect(revokedEvents().map((event) => event.payload)).toEqual([
        { userId, sessionId: a.sessionId, reason: 'user_disabled' },
        { userId, sessionId: b.sessionId, reason: 'user_disabled' },
      ]);
      expect([...(await revocations.revokedAmong([a, b, kept].map((t) => t.sessionId)))]).toEqual([
        a.sessionId,
        b.sessionId,
      ]);
      expect(await service.revokeAll(userId, 'logout_all', undefined)).toBe(1);
    });

    it('changes nothing for a user without active sessions', async () => {
      const { service, revocations, revokedEvents } = setUp();
      expect(await service.revokeAll(randomUUID(), 'logout_all', undefined)).toBe(0);
      expect(revokedEvents()).toEqual([]);
      expect(revocations.entries.size).toBe(0);
    });
  });

  describe('endWithin', () => {
    it('stops access tokens before the surrounding transaction commits: a change that fails afterwards announces nothing, its tokens stay refused (fail closed)', async () => {
      const { service, transactions, revocations } = setUp();
      const userId = randomUUID();
      const { sessionId } = await service.open(userId, undefined);
      const failed = transactions.run(async (tx) => {
        await service.endWithin(tx, userId, {}, 'password_changed');
        throw new Error('the rest of the change failed');
      });
      await expect(failed).rejects.toThrow('the rest of the change failed');
      expect(transactions.events).toEqual([]);
      expect(await revocations.isRevoked(sessionId)).toBe(true);
    });

    it('fails the change, announcing nothing, when Redis cannot take the entry', async () => {
      const { service, transactions, revocations } = setUp();
      const userId = randomUUID();
      const { sessionId } = await service.open(userId, undefined);
      revocations.failingCalls.add(1);
      await expect(service.revokeAll(userId, 'logout_all', undefined)).rejects.toThrow(
        'ECONNREFUSED',
      );
      expect(transactions.events).toEqual([]);
      expect(await revocations.isRevoked(sessionId)).toBe(false);
    });

    it('succeeds when the write after the commit fails at first, or every time (the database holds the end)', async () => {
      const { service, revocations, revokedEvents } = setUp();
      const userId = randomUUID();
      const [first, second] = [
        await service.open(userId, undefined),
        await service.open(userId, undefined),
      ];
      // Calls 1 (before the commit) succeed; 2 and 3 (after it) fail, 4 succeeds.
      revocations.failingCalls = new Set([2, 3]);
      await service.revoke(userId, first.sessionId);
      // Calls 5 succeeds; 6, 7 and 8 (every attempt after the commit) fail.
      revocations.failingCalls = new Set([6, 7, 8]);
      await service.revoke(userId, second.sessionId);

      expect(revokedEvents()).toHaveLength(2);
      expect(await service.listActive(userId)).toEqual([]);
      expect(await revocations.revokedAmong([first.sessionId, second.sessionId])).toEqual(
        new Set([first.sessionId, second.sessionId]),
      );
    });
  });
});
