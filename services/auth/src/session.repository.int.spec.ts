import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashOpaqueToken, newOpaqueToken } from './opaque-token';
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
    it('stores a session with its first refresh token, not yet rotated', async () => {
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
      expect(await lock(token)).toEqual({ session, rotatedAt: null });
    });
  });

  describe('rotateIfUsable', () => {
    it('rotates a current token: marks it rotated, adds its successor and touches the session', async () => {
      const { session, refreshToken } = await world.newSession({ userAgent: 'Firefox' });
      const rotation = rotationOf(refreshToken, new Date(), { userAgent: 'Chrome' });
      const touched = await repository().rotateIfUsable(rotation, later(rotation.at, -10 * SECOND));
      expect(touched).toEqual({
        ...session,
        lastUsedAt: rotation.at,
        idleExpiresAt: rotation.idleExpiresAt,
        userAgent: 'Chrome',
      });
      expect((await tokenRow(rotation.tokenHash))?.rotatedAt).toEqual(rotation.at);
      expect(await tokenRow(rotation.successorHash)).toMatchObject({
        sessionId: session.id,
        createdAt: rotation.at,
        rotatedAt: null,
      });
    });

    it('keeps the user agent when given none, and never moves the idle expiry past the end', async () => {
      const now = new Date();
      const { session, refreshToken } = await world.newSession({
        userAgent: 'Firefox',
        expiresAt: later(now, 30 * 60 * SECOND),
      });
      const rotation = rotationOf(refreshToken, now);
      const touched = await repository().rotateIfUsable(rotation, now);
      expect(touched).toMatchObject({ userAgent: 'Firefox', idleExpiresAt: session.expiresAt });
    });

    it('rotates a token rotated at or after the given time again, keeping its first rotation time', async () => {
      const rotatedAt = new Date();
      const { session, refreshToken } = await world.newSession({ rotatedAt });
      const rotation = rotationOf(refreshToken, later(rotatedAt, 5 * SECOND));
      expect(await repository().rotateIfUsable(rotation, rotatedAt)).not.toBeNull();
      expect((await tokenRow(rotation.tokenHash))?.rotatedAt).toEqual(rotatedAt);
      expect(await tokenCount(session.id)).toBe(3);
    });

    it('changes nothing for a token rotated before the given time', async () => {
      const rotatedAt = new Date();
      const { session, refreshToken } = await world.newSession({ rotatedAt });
      const rotation = rotationOf(refreshToken, later(rotatedAt, 11 * SECOND));
      expect(await repository().rotateIfUsable(rotation, later(rotatedAt, 1))).toBeNull();
      expect(await tokenCount(session.id)).toBe(2);
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
        expect(await repository().rotateIfUsable(rotationOf(refreshToken, now), now)).toBeNull();
        expect(await tokenCount(session.id)).toBe(1);
      }
      const unknown = rotationOf(newOpaqueToken().token, now);
      expect(await repository().rotateIfUsable(unknown, now)).toBeNull();
      expect(await tokenRow(unknown.successorHash)).toBeNull();
    });

    it('serialises two simultaneous rotations of one token: the second sees it rotated, every time', async () => {
      for (let round = 0; round < 10; round++) {
        const { session, refreshToken } = await world.newSession();
        const at = new Date();
        const [first, second] = [rotationOf(refreshToken, at), rotationOf(refreshToken, at)];
        const since = later(at, -10 * SECOND);
        const touched = await Promise.all([
          repository().rotateIfUsable(first, since),
          repository().rotateIfUsable(second, since),
        ]);
        expect(touched.map((row) => row?.id)).toEqual([session.id, session.id]);
        expect(await tokenCount(session.id)).toBe(3);
        expect((await tokenRow(first.tokenHash))?.rotatedAt).toEqual(at);
      }
    });

    it('refuses the second of two simultaneous rotations when only the current token may rotate', async () => {
      for (let round = 0; round < 10; round++) {
        const { session, refreshToken } = await world.newSession();
        const at = new Date();
        const since = later(at, 1);
        const touched = await Promise.all([
          repository().rotateIfUsable(rotationOf(refreshToken, at), since),
          repository().rotateIfUsable(rotationOf(refreshToken, at), since),
        ]);
        expect(touched.filter((row) => row !== null)).toHaveLength(1);
        expect(await tokenCount(session.id)).toBe(2);
      }
    });
  });

  describe('lockToken', () => {
    it("gives the token's session and rotation time; nothing for an unknown token", async () => {
      const rotatedAt = new Date();
      const { session, refreshToken } = await world.newSession({ rotatedAt });
      expect(await lock(refreshToken)).toEqual({ session, rotatedAt });
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

  describe('rotate', () => {
    it('rotates the token of a session in the transaction, keeping its first rotation time', async () => {
      const rotatedAt = new Date();
      const { session, refreshToken } = await world.newSession({ rotatedAt });
      const rotation = rotationOf(refreshToken, later(rotatedAt, SECOND), { userAgent: 'Safari' });
      const touched = await world.transactions.run(({ client }) =>
        repository().rotate(client, session.id, rotation),
      );
      expect(touched).toMatchObject({
        id: session.id,
        lastUsedAt: rotation.at,
        userAgent: 'Safari',
      });
      expect((await tokenRow(rotation.tokenHash))?.rotatedAt).toEqual(rotatedAt);
      expect((await tokenRow(rotation.successorHash))?.sessionId).toBe(session.id);
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
