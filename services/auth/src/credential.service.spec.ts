import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { GuessingClient } from './password-guard';
import { wireOverFakes, type WiringOptions } from './testing/auth.wiring';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';

const PASSWORD = 'correct horse battery';
const EMAIL = 'ada@example.com';
/** Client addresses (TEST-NET-2). */
const HOME: GuessingClient = { address: '198.51.100.1' };
const ATTACKER: GuessingClient = { address: '198.51.100.66' };
const FAILURES_PER_CLIENT = 5;

function setUp(options: WiringOptions = {}) {
  const clock = options.clock ?? createTestClock();
  const wired = wireOverFakes({ ...options, clock });
  const { credentials: service, sessions, oneTimeTokens, mailedToken, fakes } = wired;
  const { credentials, passwords, revocations, transactions } = fakes;
  const eventsOf = (type: string) =>
    transactions.events.filter((event) => event.type === type).map((event) => event.payload);
  /** Signs in the way the users subgraph asks the auth service to. */
  const login = (
    userId: string | undefined,
    password = PASSWORD,
    client: GuessingClient = HOME,
    email = EMAIL,
  ) =>
    service.login({ userId, email, password, userAgent: undefined, client }).then((signIn) => {
      if (!signIn.tokens) throw new Error('expected a session, got an MFA challenge');
      return signIn;
    });
  /** What a refused sign-in said: its code, or 'signed in'. */
  const outcomeOf = (attempt: Promise<unknown>) =>
    attempt.then(
      () => 'signed in',
      (error: { code: string }) => error.code,
    );
  /** A user with a password and `count` open sessions. */
  async function userWithSessions(count: number) {
    const userId = randomUUID();
    const first = await service.create(userId, PASSWORD, undefined);
    const more = [];
    for (let i = 1; i < count; i++) more.push((await login(userId)).tokens);
    return { userId, sessionIds: [first, ...more].map((tokens) => tokens.sessionId) };
  }
  return {
    service,
    sessions,
    oneTimeTokens,
    credentials,
    passwords,
    revocations,
    clock,
    eventsOf,
    login,
    outcomeOf,
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
      const { login, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      expect((await login(userId)).tokens.userId).toBe(userId);
    });

    it('answers a wrong password, an unknown user and no user alike, checking a password each time', async () => {
      const { login, passwords, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const before = passwords.verifications;
      const attempts: [string | undefined, string][] = [
        [userId, 'wrong passphrase'],
        [randomUUID(), PASSWORD],
        ['not-an-id', PASSWORD],
        [undefined, PASSWORD],
      ];
      for (const [who, password] of attempts) {
        expect(await appErrorOf(login(who, password))).toMatchObject({
          code: 'UNAUTHENTICATED',
          message: 'Invalid email or password',
        });
      }
      expect(passwords.verifications - before).toBe(attempts.length);
    });
  });

  describe('login under the guess limits', () => {
    it('checks at most 5 wrong passwords per account and address, then refuses even the right one without checking it', async () => {
      const { login, passwords, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const before = passwords.verifications;
      for (let i = 0; i < FAILURES_PER_CLIENT; i++) {
        expect((await appErrorOf(login(userId, 'wrong passphrase'))).code).toBe('UNAUTHENTICATED');
      }
      const refused = await appErrorOf(login(userId));
      expect(refused).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 900 });
      expect(passwords.verifications - before).toBe(FAILURES_PER_CLIENT);
    });

    it('checks at most 5 of 60 guesses that arrive at once, whichever of them is right', async () => {
      const { login, outcomeOf, passwords, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const before = passwords.verifications;
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          outcomeOf(login(userId, i === 40 ? PASSWORD : `wrong guess ${i}`)),
        ),
      );
      expect(
        outcomes.filter((outcome) => outcome === 'UNAUTHENTICATED').length,
      ).toBeLessThanOrEqual(FAILURES_PER_CLIENT);
      expect(outcomes.filter((outcome) => outcome !== 'RATE_LIMITED')).toHaveLength(
        passwords.verifications - before,
      );
      expect(passwords.verifications - before).toBeLessThanOrEqual(FAILURES_PER_CLIENT + 1);
    });

    it('lets the owner sign in from another address while an attacker is locked out of theirs', async () => {
      const { login, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      for (let i = 0; i < 20; i++) await appErrorOf(login(userId, `guess ${i}`, ATTACKER));
      expect((await appErrorOf(login(userId, PASSWORD, ATTACKER))).code).toBe('RATE_LIMITED');
      expect((await login(userId, PASSWORD, HOME)).tokens.userId).toBe(userId);
    });

    it('limits an unknown email exactly like a real account', async () => {
      const { login, outcomeOf, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const tries = async (who: string | undefined, email: string) => {
        const outcomes = [];
        for (let i = 0; i < FAILURES_PER_CLIENT + 2; i++)
          outcomes.push(await outcomeOf(login(who, 'wrong passphrase', ATTACKER, email)));
        return outcomes;
      };
      expect(await tries(undefined, 'nobody@example.com')).toEqual(await tries(userId, EMAIL));
    });

    it('counts every spelling of an unknown email as one account', async () => {
      const { login, outcomeOf } = setUp();
      const spellings = [
        'zoë@example.com',
        'ZOË@example.com',
        ' zoe\u0308@example.com',
        'zoë@Example.com ',
        'Zoë@example.com',
        'zoë@example.com',
      ];
      const outcomes = [];
      for (const email of spellings)
        outcomes.push(await outcomeOf(login(undefined, 'wrong passphrase', ATTACKER, email)));
      expect(outcomes).toEqual([...Array<string>(5).fill('UNAUTHENTICATED'), 'RATE_LIMITED']);
    });

    it('does not count a right password as a guess', async () => {
      const { login, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      for (let i = 0; i < 3 * FAILURES_PER_CLIENT; i++) await login(userId);
      for (let i = 0; i < FAILURES_PER_CLIENT; i++) {
        expect((await appErrorOf(login(userId, 'wrong passphrase'))).code).toBe('UNAUTHENTICATED');
      }
    });

    it('forgets wrong guesses once they are older than the window', async () => {
      const { login, clock, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      for (let i = 0; i < FAILURES_PER_CLIENT; i++) await appErrorOf(login(userId, 'wrong'));
      clock.advance(600);
      expect(await appErrorOf(login(userId))).toMatchObject({ retryAfter: 300 });
      clock.advance(300);
      expect((await login(userId)).tokens.userId).toBe(userId);
    });

    it('stops attackers spread over many addresses at the account-wide limit', async () => {
      const { login, outcomeOf, userWithSessions } = setUp({ guessPolicy: { perAccount: 12 } });
      const { userId } = await userWithSessions(1);
      const outcomes = [];
      for (let i = 0; i < 30; i++) {
        const botnet = { address: `203.0.113.${i}` };
        outcomes.push(await outcomeOf(login(userId, `guess ${i}`, botnet)));
      }
      expect(outcomes.filter((outcome) => outcome === 'UNAUTHENTICATED')).toHaveLength(12);
      expect(outcomes.slice(12).every((outcome) => outcome === 'RATE_LIMITED')).toBe(true);
      // A stranger with the right password waits too...
      expect((await appErrorOf(login(userId, PASSWORD, HOME))).code).toBe('RATE_LIMITED');
    });

    it('lets a device that signed in before through the account-wide limit, under a limit of its own', async () => {
      const { login, userWithSessions } = setUp({ guessPolicy: { perAccount: 12 } });
      const { userId } = await userWithSessions(1);
      const { deviceToken } = await login(userId, PASSWORD, HOME);
      for (let i = 0; i < 30; i++)
        await appErrorOf(login(userId, 'guess', { address: `10.0.${i}.1` }));
      expect((await appErrorOf(login(userId, PASSWORD, HOME))).code).toBe('RATE_LIMITED');

      // The known device, even on the attacker's address, is limited only by its own count.
      const phone = { ...ATTACKER, deviceToken };
      expect((await login(userId, PASSWORD, phone)).tokens.userId).toBe(userId);
      for (let i = 0; i < FAILURES_PER_CLIENT; i++) {
        expect((await appErrorOf(login(userId, 'typo', phone))).code).toBe('UNAUTHENTICATED');
      }
      expect((await appErrorOf(login(userId, PASSWORD, phone))).code).toBe('RATE_LIMITED');
    });

    it('keeps a presented device token, and gives a new one for a token of another account or none', async () => {
      const { login, userWithSessions } = setUp();
      const [ada, bob] = [(await userWithSessions(1)).userId, (await userWithSessions(1)).userId];
      const { deviceToken } = await login(ada);
      expect(deviceToken).toMatch(/^[\w-]{43}$/);
      expect((await login(ada, PASSWORD, { ...HOME, deviceToken })).deviceToken).toBe(deviceToken);
      const bobs = await login(bob, PASSWORD, { ...HOME, deviceToken });
      expect(bobs.deviceToken).not.toBe(deviceToken);
      expect(
        (await login(ada, PASSWORD, { ...HOME, deviceToken: 'made up' })).deviceToken,
      ).not.toBe(deviceToken);
    });

    it('does not let a device token of another account past the account-wide limit', async () => {
      const { login, userWithSessions } = setUp({ guessPolicy: { perAccount: 3 } });
      const [ada, bob] = [(await userWithSessions(1)).userId, (await userWithSessions(1)).userId];
      const { deviceToken } = await login(bob);
      for (let i = 0; i < 3; i++) await appErrorOf(login(ada, 'guess', { address: `10.1.${i}.1` }));
      expect((await appErrorOf(login(ada, PASSWORD, { ...HOME, deviceToken }))).code).toBe(
        'RATE_LIMITED',
      );
    });
  });

  describe('changePassword', () => {
    it('replaces the password, announces it and ends every other session', async () => {
      const { service, sessions, revocations, eventsOf, login, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(3);
      const [kept, ...others] = sessionIds as [string, ...string[]];
      await service.changePassword(userId, {
        currentPassword: PASSWORD,
        newPassword: 'a new passphrase',
        keepSessionId: kept,
        client: HOME,
      });
      expect(eventsOf('auth.password_changed')).toEqual([{ userId }]);
      expect(eventsOf('auth.session_revoked')).toEqual(
        others.map((sessionId) => ({ userId, sessionId, reason: 'password_changed' })),
      );
      expect([...(await revocations.revokedAmong(sessionIds))]).toEqual(others);
      expect((await sessions.listActive(userId)).map((session) => session.id)).toEqual([kept]);
      expect((await login(userId, 'a new passphrase')).tokens.userId).toBe(userId);
      expect((await appErrorOf(login(userId))).code).toBe('UNAUTHENTICATED');
    });

    it('forgets the devices that signed in with the old password: they share the account-wide limit again', async () => {
      const { service, login, userWithSessions } = setUp({ guessPolicy: { perAccount: 3 } });
      const { userId, sessionIds } = await userWithSessions(1);
      // Earned with the old password (by its owner, or by whoever had phished it).
      const { deviceToken } = await login(userId, PASSWORD, HOME);
      await service.changePassword(userId, {
        currentPassword: PASSWORD,
        newPassword: 'a new passphrase',
        keepSessionId: sessionIds[0],
        client: HOME,
      });
      for (let i = 0; i < 3; i++)
        await appErrorOf(login(userId, 'guess', { address: `10.2.${i}.1` }));
      expect(
        (await appErrorOf(login(userId, 'a new passphrase', { ...ATTACKER, deviceToken }))).code,
      ).toBe('RATE_LIMITED');
    });

    it('ends every session when the caller names none', async () => {
      const { service, sessions, userWithSessions } = setUp();
      const { userId } = await userWithSessions(2);
      const change = { currentPassword: PASSWORD, newPassword: 'a new passphrase', client: HOME };
      await service.changePassword(userId, { ...change, keepSessionId: undefined });
      expect(await sessions.listActive(userId)).toEqual([]);
    });

    it('refuses a wrong current password and an unfit new one, changing nothing', async () => {
      const { service, sessions, eventsOf, login, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(2);
      const keepSessionId = sessionIds[0];
      expect(
        await appErrorOf(
          service.changePassword(userId, {
            currentPassword: 'not my passphrase',
            newPassword: 'a new passphrase',
            keepSessionId,
            client: HOME,
          }),
        ),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'currentPassword' });
      expect(
        await appErrorOf(
          service.changePassword(userId, {
            currentPassword: PASSWORD,
            newPassword: 'short',
            keepSessionId,
            client: HOME,
          }),
        ),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
      expect(eventsOf('auth.password_changed')).toEqual([]);
      expect(await sessions.listActive(userId)).toHaveLength(2);
      expect((await login(userId)).tokens.userId).toBe(userId);
    });

    it('limits wrong current passwords like login: 30 guesses check 5, and then the right one waits', async () => {
      const { service, passwords, eventsOf, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(1);
      const change = (currentPassword: string) =>
        appErrorOf(
          service.changePassword(userId, {
            currentPassword,
            newPassword: 'the thief wants this',
            keepSessionId: sessionIds[0],
            client: ATTACKER,
          }),
        );
      const before = passwords.verifications;
      const codes = [];
      for (let i = 0; i < 30; i++) codes.push((await change(`guess ${i}`)).code);
      expect(codes.slice(0, FAILURES_PER_CLIENT).every((code) => code === 'BAD_USER_INPUT')).toBe(
        true,
      );
      expect(codes.slice(FAILURES_PER_CLIENT).every((code) => code === 'RATE_LIMITED')).toBe(true);
      expect(await change(PASSWORD)).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 900 });
      expect(passwords.verifications - before).toBe(FAILURES_PER_CLIENT);
      expect(eventsOf('auth.password_changed')).toEqual([]);
    });

    it('shares its limit with login: guesses here count against sign-in from the same address', async () => {
      const { service, login, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      for (let i = 0; i < FAILURES_PER_CLIENT; i++) {
        await appErrorOf(
          service.changePassword(userId, {
            currentPassword: `guess ${i}`,
            newPassword: 'a new passphrase',
            keepSessionId: undefined,
            client: ATTACKER,
          }),
        );
      }
      expect((await appErrorOf(login(userId, PASSWORD, ATTACKER))).code).toBe('RATE_LIMITED');
      expect((await login(userId, PASSWORD, HOME)).tokens.userId).toBe(userId);
    });

    it('refuses an empty current password as missing, without counting a guess', async () => {
      const { service, passwords, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const before = passwords.verifications;
      expect(
        await appErrorOf(
          service.changePassword(userId, {
            currentPassword: '',
            newPassword: 'a new passphrase',
            keepSessionId: undefined,
            client: HOME,
          }),
        ),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'currentPassword' });
      expect(passwords.verifications).toBe(before);
    });
  });

  describe('resetPassword', () => {
    it('sets the password with a mailed token, once, and ends every session', async () => {
      const { service, oneTimeTokens, sessions, eventsOf, login, userWithSessions, mailedToken } =
        setUp();
      const { userId, sessionIds } = await userWithSessions(2);
      await oneTimeTokens.send('RESET_PASSWORD', userId, 'a@example.com');
      const token = mailedToken();
      expect(await service.resetPassword(token, 'a fresh passphrase')).toBe(userId);
      expect(await sessions.listActive(userId)).toEqual([]);
      expect(eventsOf('auth.password_changed')).toEqual([{ userId }]);
      expect(eventsOf('auth.session_revoked')).toEqual(
        sessionIds.map((sessionId) => ({ userId, sessionId, reason: 'password_reset' })),
      );
      expect((await login(userId, 'a fresh passphrase')).tokens.userId).toBe(userId);
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
    const byAdmin = { actorId: randomUUID(), currentPassword: undefined, client: HOME };

    it('removes the password and ends every session', async () => {
      const { service, sessions, revocations, eventsOf, login, userWithSessions } = setUp();
      const { userId, sessionIds } = await userWithSessions(2);
      await service.delete(userId, byAdmin);
      expect(await sessions.listActive(userId)).toEqual([]);
      expect(eventsOf('auth.session_revoked')).toEqual(
        sessionIds.map((sessionId) => ({ userId, sessionId, reason: 'user_deleted' })),
      );
      expect((await revocations.revokedAmong(sessionIds)).size).toBe(2);
      expect((await appErrorOf(login(userId))).code).toBe('UNAUTHENTICATED');
    });

    it('needs no password when nobody in particular (an undone registration) removes it', async () => {
      const { service, credentials, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      await service.delete(userId, {
        actorId: undefined,
        currentPassword: undefined,
        client: HOME,
      });
      expect(credentials.credentials.has(userId)).toBe(false);
    });

    it('requires users deleting themselves to give their current password, under the guess limits', async () => {
      const { service, credentials, sessions, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      const deleteSelf = (currentPassword: string | undefined) =>
        service.delete(userId, { actorId: userId, currentPassword, client: ATTACKER });
      expect(await appErrorOf(deleteSelf(undefined))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'currentPassword',
        message: 'currentPassword: is required to delete your own account',
      });
      for (let i = 0; i < FAILURES_PER_CLIENT; i++) {
        expect(await appErrorOf(deleteSelf(`guess ${i}`))).toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'currentPassword',
          message: 'currentPassword: is not your current password',
        });
      }
      expect((await appErrorOf(deleteSelf(PASSWORD))).code).toBe('RATE_LIMITED');
      expect(credentials.credentials.has(userId)).toBe(true);
      expect(await sessions.listActive(userId)).toHaveLength(1);
    });

    it('removes the credential of users who delete themselves with their password', async () => {
      const { service, credentials, userWithSessions } = setUp();
      const { userId } = await userWithSessions(1);
      await service.delete(userId, { actorId: userId, currentPassword: PASSWORD, client: HOME });
      expect(credentials.credentials.has(userId)).toBe(false);
    });
  });
});
