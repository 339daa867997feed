import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashOpaqueToken, newOpaqueToken, newSuccessorKey } from './opaque-token';
import { createSessionRepository, type Rotation } from './session.repository';
import { useAuthTestWorld } from './testing/auth.test-world';
import { holdLock, untilOneWaitsForALock } from './testing/lock-holder';

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const later = (from: Date, ms: number) => new Date(from.getTime() + ms);

describe('SessionRepository against PostgreSQL', () => {
  const world = useAuthTestWorld();
  const repository = () => createSessionRepository(world.db);

  function rotationOf(refreshToken: string, at = new Date(), fields: Partial<Rotation> = {}) {
    return {
      tokenHash: hashOpaqueToken(refreshToken),
      successorHash: newOpaqueToken().hash,
      at,
      idleExpiresAt: later(at, HOUR),
      userAgent: null,
      ...fields,
    } satisfies Rotation;
  }

  const tokenRow = (tokenHash: string) =>
    world.db.refreshToken.findUnique({ where: { tokenHash } });
  const tokenCount = (sessionId: string) => world.db.refreshToken.count({ where: { sessionId } });
  const sessionRow = (id: string) => world.db.session.findUniqueOrThrow({ where: { id } });
  const lock = (refreshToken: string) =>
    world.transactions.run(({ client }) =>
      repository().lockToken(client, hashOpaqueToken(refreshToken)),
    );

  describe('create', () => {
    it('stores a session with its first refresh token, not yet rotated, at generation 0', async () => {
      const { token, hash } = newOpaqueToken();
      const createdAt = new Date();
      const session = await repository().create({
        userId: randomUUID(),
        userAgent: 'Firefox',
        createdAt,
        idleExpiresAt: later(createdAt, HOUR),
        expiresAt: later(createdAt, 24 * HOUR),
        refreshTokenHash: hash,
      });
      expect(session).toMatchObject({
        userAgent: 'Firefox',
        lastUsedAt: createdAt,
        revokedAt: null,
      });
      expect(await lock(token)).toEqual({ session, rotatedAt: null, generation: 0 });
    });
  });

  describe('rotateIfCurrent', () => {
    it('rotates a current token: marks it rotated, adds its successor one generation on and touches the session', async () => {
      const { session, refreshToken } = await world.newSession({ userAgent: 'Firefox' });
      const rotation = rotationOf(refreshToken, new Date(), { userAgent: 'Chrome' });
      const touched = await repository().rotateIfCurrent(rotation);
      expect(touched).toEqual({
        ...session,
        lastUsedAt: rotation.at,
        idleExpiresAt: rotation.idleExpiresAt,
        userAgent: 'Chrome',
      });
      expect(await tokenRow(rotation.tokenHash)).toMatchObject({
        rotatedAt: rotation.at,
        generation: 0,
      });
      expect(await tokenRow(rotation.successorHash)).toMatchObject({
        sessionId: session.id,
        createdAt: rotation.at,
        rotatedAt: null,
        generation: 1,
      });
    });

    it('keeps the user agent when given none, and never moves the idle expiry past the end', async () => {
      const now = new Date();
      const { session, refreshToken } = await world.newSession({
        userAgent: 'Firefox',
        expiresAt: later(now, 30 * 60 * SECOND),
      });
      const touched = await repository().rotateIfCurrent(rotationOf(refreshToken, now));
      expect(touched).toMatchObject({ userAgent: 'Firefox', idleExpiresAt: session.expiresAt });
    });

    it('changes nothing for a token already rotated, however recently', async () => {
      const rotatedAt = new Date();
      const { session, refreshToken } = await world.newSession({ rotatedAt });
      const rotation = rotationOf(refreshToken, rotatedAt);
      expect(await repository().rotateIfCurrent(rotation)).toBeNull();
      expect(await tokenCount(session.id)).toBe(2);
      expect(await tokenRow(rotation.successorHash)).toBeNull();
      expect(await sessionRow(session.id)).toEqual(session);
    });

    it('changes nothing for an unknown token, or one of a revoked, idle or expired session', async () => {
      const now = new Date();
      const ended = [
        await world.newSession({ revokedAt: later(now, -SECOND) }),
        await world.newSession({ idleExpiresAt: now }),
        await world.newSession({ expiresAt: now }),
      ];
      for (const { session, refreshToken } of ended) {
        expect(await repository().rotateIfCurrent(rotationOf(refreshToken, now))).toBeNull();
        expect(await tokenCount(session.id)).toBe(1);
      }
      const unknown = rotationOf(newOpaqueToken().token, now);
      expect(await repository().rotateIfCurrent(unknown)).toBeNull();
      expect(await tokenRow(unknown.successorHash)).toBeNull();
    });

    it('lets only the first of two simultaneous rotations of one token rotate it, every time', async () => {
      for (let round = 0; round < 10; round++) {
        const { session, refreshToken } = await world.newSession();
        const at = new Date();
        const [first, second] = [rotationOf(refreshToken, at), rotationOf(refreshToken, at)];
        const touched = await Promise.all([
          repository().rotateIfCurrent(first),
          repository().rotateIfCurrent(second),
        ]);
        expect(touched.filter((row) => row?.id === session.id)).toHaveLength(1);
        expect(touched.filter((row) => row === null)).toHaveLength(1);
        expect(await tokenCount(session.id)).toBe(2);
        expect(await repository().listActive(session.userId, at)).toHaveLength(1);
      }
    });
  });

  describe('lockToken', () => {
    it("gives the token's session, rotation time and generation; nothing for an unknown token", async () => {
      const rotatedAt = new Date();
      const { session, refreshToken } = await world.newSession({ rotatedAt });
      expect(await lock(refreshToken)).toEqual({ session, rotatedAt, generation: 0 });
      expect(await lock(newOpaqueToken().token)).toBeNull();
    });

    it('makes a second transaction presenting the token wait until the first one ends', async () => {
      const { refreshToken } = await world.newSession();
      const first = await holdLock(world.transactions, (client) =>
        repository().lockToken(client, hashOpaqueToken(refreshToken)),
      );
      let secondLocked = false;
      const second = lock(refreshToken).then(() => (secondLocked = true));
      await untilOneWaitsForALock(world.db);
      expect(secondLocked).toBe(false);
      await first.release();
      await second;
      expect(secondLocked).toBe(true);
    });
  });

  describe('liveToken', () => {
    it("gives the session's token not rotated yet, with its generation", async () => {
      const { session, refreshToken } = await world.newSession();
      const first = rotationOf(refreshToken);
      await repository().rotateIfCurrent(first);
      const second = { ...rotationOf(refreshToken), tokenHash: first.successorHash };
      await repository().rotateIfCurrent(second);
      const live = await world.transactions.run(({ client }) =>
        repository().liveToken(client, session.id),
      );
      expect(live).toEqual({ tokenHash: second.successorHash, generation: 2 });
      const unknown = await world.transactions.run(({ client }) =>
        repository().liveToken(client, randomUUID()),
      );
      expect(unknown).toBeNull();
    });
  });

  describe('ensureSuccessorKey', () => {
    it('keeps the first key offered, also of simultaneous calls, and gives it to every caller', async () => {
      const offered = [newSuccessorKey(), newSuccessorKey(), newSuccessorKey()];
      const kept = await Promise.all(offered.map((key) => repository().ensureSuccessorKey(key)));
      expect(offered.map((key) => Buffer.from(key).toString('hex'))).toContain(
        Buffer.from(kept[0]!).toString('hex'),
      );
      expect(kept.slice(1)).toEqual([kept[0], kept[0]]);
      expect(await repository().ensureSuccessorKey(newSuccessorKey())).toEqual(kept[0]);
    });
  });

  describe('listActive', () => {
    it("lists the user's active sessions, most recently used first", async () => {
      const userId = randomUUID();
      const now = new Date();
      const older = await world.newSession({ userId, createdAt: later(now, -HOUR / 2) });
      const newer = await world.newSession({ userId, createdAt: later(now, -SECOND) });
      await world.newSession({ userId, revokedAt: now });
      await world.newSession({ userId, idleExpiresAt: now });
      await world.newSession({ userId, expiresAt: now });
      await world.newSession();
      const listed = await repository().listActive(userId, now);
      expect(listed.map((session) => session.id)).toEqual([newer.session.id, older.session.id]);
    });
  });

  describe('revoke', () => {
    const revoke = (userId: string, which: { only?: string; except?: string }, at = new Date()) =>
      world.transactions.run(({ client }) =>
        repository().revoke(client, userId, which, 'logout_all', at),
      );

    async function sessionsOf(userId: string, count: number) {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push((await world.newSession({ userId })).session.id);
      return ids;
    }

    it('ends every active session of the user, with the time and reason, and says which', async () => {
      const userId = randomUUID();
      const ids = await sessionsOf(userId, 2);
      const at = new Date();
      expect((await revoke(userId, {}, at)).toSorted()).toEqual(ids.toSorted());
      for (const id of ids) {
        expect(await sessionRow(id)).toMatchObject({ revokedAt: at, revokedReason: 'logout_all' });
      }
    });

    it('ends only the session named, or all but the session named', async () => {
      const userId = randomUUID();
      const [a, b, c] = (await sessionsOf(userId, 3)) as [string, string, string];
      expect(await revoke(userId, { only: a })).toEqual([a]);
      expect(await revoke(userId, { except: b })).toEqual([c]);
      expect((await repository().listActive(userId, new Date())).map((s) => s.id)).toEqual([b]);
    });

    it("passes over ended and expired sessions and other users' ones, but ends idle ones", async () => {
      const userId = randomUUID();
      const now = new Date();
      const revokedAt = later(now, -HOUR);
      const revoked = await world.newSession({ userId, revokedAt });
      await world.newSession({ userId, expiresAt: now });
      const idle = await world.newSession({ userId, idleExpiresAt: now });
      const theirs = await world.newSession();
      expect(await revoke(userId, {}, now)).toEqual([idle.session.id]);
      expect((await sessionRow(revoked.session.id)).revokedAt).toEqual(revokedAt);
      expect((await sessionRow(theirs.session.id)).revokedAt).toBeNull();
      expect(await revoke(userId, { only: theirs.session.id }, now)).toEqual([]);
    });

    it('ends each session once when two revocations race, every time', async () => {
      for (let round = 0; round < 10; round++) {
        const userId = randomUUID();
        const ids = await sessionsOf(userId, 3);
        const [first, second] = await Promise.all([revoke(userId, {}), revoke(userId, {})]);
        expect([...first, ...second].toSorted()).toEqual(ids.toSorted());
      }
    });
  });
});
