import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { wireOverFakes } from './testing/auth.wiring';
import { appErrorOf } from './testing/app-error';

const PASSWORD = 'correct horse battery';

function setUp() {
  const { credentials: service, sessions, oneTimeTokens, mailedToken, fakes } = wireOverFakes();
  const { credentials, passwords, revocations, transactions } = fakes;
  const eventsOf = (type: string) =>
    transactions.events.filter((event) => event.type === type).map((event) => event.payload);
  /** A user with a password and `count` open sessions. */
  async function userWithSessions(count: number) {
    const userId = randomUUID();
    const first = await service.create(userId, PASSWORD, undefined);
    const more = [];
    for (let i = 1; i < count; i++) more.push(await service.login(userId, PASSWORD, undefined));
    return { userId, sessionIds: [first, ...more].map((tokens) => tokens.sessionId) };
  }
  return {
    service,
    sessions,
    oneTimeTokens,
    credentials,
    passwords,
    revocations,
    eventsOf,
    userWithSessions,
    mailedToken,
  };
}

describe('CredentialService', () => {
  describe('create', () => {
    it('stores the password hashed and opens the first session', async () => {
      const { service, credentials, sessions } = setUp();
      const userId = randomUUID();
      const tokens = await service.create(userId, PASSWORD, 'Firefox');
      expect(tokens.userId).toBe(userId);
      expect(credentials.credentials.get(userId)?.passwordHash).toBe(`hashed:${PASSWORD}`);
      expect((await sessions.listActive(userId)).map((session) => session.id)).toEqual([
        tokens.sessionId,
      ]);
    });

    it('refuses a second password for the same user with CONFLICT', async () => {
      const { service } = setUp();
      const userId = randomUUID();
      await service.create(userId, PASSWORD, undefined);
      expect(
        await appErrorOf(service.create(userId, 'another passphrase', undefined)),
      ).toMatchObject({
        code: 'CONFLICT',
      });
    });

    it('refuses a short or common password before storing anything', async () => {
      const { service, credentials } = setUp();
      for (const password of ['short', 'password1']) {
        expect(await appErrorOf(service.create(randomUUID(), password, undefined))).toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'password',
        });
      }
      expect(credentials.credentials.size).toBe(0);
    });
  });

  describe('login', () => {
    it('opens a session for the right password', async () => {
      const { service, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      expect((await service.login(userId, PASSWORD, undefined)).userId).toBe(userId);
    });

    it('answers a wrong password, an unknown user and no user alike, checking a password each time', async () => {
      const { service, passwords, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const before = passwords.verifications;
      const attempts: [string | undefined, string][] = [
        [userId, 'wrong passphrase'],
        [randomUUID(), PASSWORD],
        ['not-an-id', PASSWORD],
        [undefined, PASSWORD],
      ];
      for (const [who, password] of attempts) {
        expect(await appErrorOf(service.login(who, password, undefined))).toMatchObject({
          code: 'UNAUTHENTICATED',
          message: 'Invalid email or password',
        });
      }
      expect(passwords.verifications - before).toBe(attempts.length);
    });
  });

  describe('changePassword', () => {
    it('replaces the password, announces it and ends every other session', async () => {
      const { service, sessions, revocations, eventsOf, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(3);
      const [kept, ...others] = sessionIds as [string, ...string[]];
      await service.changePassword(userId, {
        currentPassword: PASSWORD,
        newPassword: 'a new passphrase',
        keepSessionId: kept,
      });
      expect(eventsOf('auth.password_changed')).toEqual([{ userId }]);
      expect(eventsOf('auth.session_revoked')).toEqual(
        others.map((sessionId) => ({ userId, sessionId, reason: 'password_changed' })),
      );
      expect([...(await revocations.revokedAmong(sessionIds))]).toEqual(others);
      expect((await sessions.listActive(userId)).map((session) => session.id)).toEqual([kept]);
      expect((await service.login(userId, 'a new passphrase', undefined)).userId).toBe(userId);
      expect((await appErrorOf(service.login(userId, PASSWORD, undefined))).code).toBe(
        'UNAUTHENTICATED',
      );
    });

    it('ends every session when the caller names none', async () => {
      const { service, sessions, userWithSessions } = setUp();
      const { userId } = await userWithSessions(2);
      const change = { currentPassword: PASSWORD, newPassword: 'a new passphrase' };
      await service.changePassword(userId, { ...change, keepSessionId: undefined });
      expect(await sessions.listActive(userId)).toEqual([]);
    });

    it('refuses a wrong current password and an unfit new one, changing nothing', async () => {
      const { service, sessions, eventsOf, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(2);
      const keepSessionId = sessionIds[0];
      expect(
        await appErrorOf(
          service.changePassword(userId, {
            currentPassword: 'not my passphrase',
            newPassword: 'a new passphrase',
            keepSessionId,
          }),
        ),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'currentPassword' });
      expect(
        await appErrorOf(
          service.changePassword(userId, {
            currentPassword: PASSWORD,
            newPassword: 'short',
            keepSessionId,
          }),
        ),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
      expect(eventsOf('auth.password_changed')).toEqual([]);
      expect(await sessions.listActive(userId)).toHaveLength(2);
      expect((await service.login(userId, PASSWORD, undefined)).userId).toBe(userId);
    });
  });

  describe('resetPassword', () => {
    it('sets the password with a mailed token, once, and ends every session', async () => {
      const { service, oneTimeTokens, sessions, eventsOf, userWithSessions, mailedToken } = setUp();
      const { userId, sessionIds } = await userWithSessions(2);
      await oneTimeTokens.send('RESET_PASSWORD', userId, 'a@example.com');
      const token = mailedToken();
      expect(await service.resetPassword(token, 'a fresh passphrase')).toBe(userId);
      expect(await sessions.listActive(userId)).toEqual([]);
      expect(eventsOf('auth.password_changed')).toEqual([{ userId }]);
      expect(eventsOf('auth.session_revoked')).toEqual(
        sessionIds.map((sessionId) => ({ userId, sessionId, reason: 'password_reset' })),
      );
      expect((await service.login(userId, 'a fresh passphrase', undefined)).userId).toBe(userId);
      expect(await appErrorOf(service.resetPassword(token, 'yet another phrase'))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'token',
      });
    });

    it('checks the new password before using up the token', async () => {
      const { service, oneTimeTokens, userWithSessions, mailedToken } = setUp();
      const { userId } = await userWithSessions(1);
      await oneTimeTokens.send('RESET_PASSWORD', userId, 'a@example.com');
      expect(await appErrorOf(service.resetPassword(mailedToken(), 'short'))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'newPassword',
      });
      expect(await service.resetPassword(mailedToken(), 'a fresh passphrase')).toBe(userId);
    });

    it('does not take an email verification token', async () => {
      const { service, oneTimeTokens, userWithSessions, mailedToken } = setUp();
      const { userId } = await userWithSessions(1);
      await oneTimeTokens.send('VERIFY_EMAIL', userId, 'a@example.com');
      expect(
        await appErrorOf(service.resetPassword(mailedToken(), 'a fresh passphrase')),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
    });
  });

  describe('delete', () => {
    it('removes the password and ends every session', async () => {
      const { service, sessions, revocations, eventsOf, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(2);
      await service.delete(userId);
      expect(await sessions.listActive(userId)).toEqual([]);
      expect(eventsOf('auth.session_revoked')).toEqual(
        sessionIds.map((sessionId) => ({ userId, sessionId, reason: 'user_deleted' })),
      );
      expect((await revocations.revokedAmong(sessionIds)).size).toBe(2);
      expect((await appErrorOf(service.login(userId, PASSWORD, undefined))).code).toBe(
        'UNAUTHENTICATED',
      );
    });
  });
});
