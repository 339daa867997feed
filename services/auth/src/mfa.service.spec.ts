import { randomUUID } from 'node:crypto';
import { generate } from 'otplib';
import { describe, expect, it } from 'vitest';
import { MAX_CHALLENGE_FAILURES, RECOVERY_CODE_COUNT, spanOf } from './mfa.service';
import type { GuessingClient } from './password-guard';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { wireOverFakes, type WiringOptions } from './testing/auth.wiring';

const PASSWORD = 'correct horse battery';
const EMAIL = 'ada@example.com';
const HOME: GuessingClient = { address: '198.51.100.1' };

function setUp(options: WiringOptions = {}) {
  const clock = options.clock ?? createTestClock(new Date('2026-11-30T12:00:10Z'));
  const wired = wireOverFakes({ ...options, clock });
  const { credentials, mfa, fakes } = wired;
  const repository = fakes.mfa;
  const eventsOf = (type: string) =>
    fakes.transactions.events.filter((event) => event.type === type).map((e) => e.payload);
  /** The code an authenticator app shows now (or `steps` periods from now). */
  const codeFor = (secret: string, steps = 0) =>
    generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) + steps * 30 });
  const login = (userId: string, password = PASSWORD, client = HOME) =>
    credentials.login({ userId, email: EMAIL, password, userAgent: 'Firefox', client });

  /** A user signed in once, with TOTP on; their secret and recovery codes. */
  async function enrolledUser() {
    const userId = randomUUID();
    const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
    const { secret } = await mfa.beginTotp(userId, sessionId, EMAIL);
    const recoveryCodes = await mfa.confirmTotp(userId, sessionId, await codeFor(secret), HOME);
    clock.advance(30); // the confirming code's step is used
    return { userId, sessionId, secret, recoveryCodes };
  }

  async function challengeOf(userId: string, client = HOME) {
    const signIn = await login(userId, PASSWORD, client);
    if (!signIn.mfaChallenge) throw new Error('expected an MFA challenge');
    return signIn.mfaChallenge.challenge;
  }

  return {
    clock,
    credentials,
    mfa,
    repository,
    fakes,
    eventsOf,
    codeFor,
    login,
    enrolledUser,
    challengeOf,
  };
}

describe('MfaService', () => {
  describe('enrolment', () => {
    it('hands out a secret and an otpauth URI, and stores the secret sealed', async () => {
      const { credentials, mfa, repository } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const { secret, uri } = await mfa.beginTotp(userId, sessionId, EMAIL);
      expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
      expect(uri).toMatch(/^otpauth:\/\/totp\/Platform:ada%40example\.com\?/);
      expect(uri).toContain(`secret=${secret}`);
      const stored = repository.factors.get(userId);
      expect(stored?.confirmedAt).toBeNull();
      expect(stored?.secretSealed).not.toContain(secret);
      expect(stored?.secretSealed).toMatch(/^dev\./);
    });

    it('turns TOTP on with a right code and returns 10 distinct recovery codes, stored hashed', async () => {
      const { credentials, mfa, repository, codeFor, eventsOf } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const { secret } = await mfa.beginTotp(userId, sessionId, EMAIL);
      expect(await appErrorOf(mfa.confirmTotp(userId, sessionId, '000000', HOME))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'code',
      });
      const codes = await mfa.confirmTotp(userId, sessionId, await codeFor(secret), HOME);
      expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
      expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
      for (const code of codes) expect(code).toMatch(/^[2-9a-z]{4}(-[2-9a-z]{4}){3}$/);
      const hashes = [...repository.recoveryCodes.keys()];
      expect(hashes).toHaveLength(RECOVERY_CODE_COUNT);
      for (const code of codes) expect(hashes.join()).not.toContain(code.replaceAll('-', ''));
      expect(eventsOf('auth.mfa_changed')).toEqual([
        { userId, change: 'totp_enabled', mfaEnrolled: true, stateVersion: 1 },
      ]);
      expect(await mfa.status([userId])).toEqual([
        { userId, totpEnabled: true, recoveryCodesLeft: RECOVERY_CODE_COUNT },
      ]);
      expect(await appErrorOf(mfa.beginTotp(userId, sessionId, EMAIL))).toMatchObject({
        code: 'CONFLICT',
      });
    });
  });

  describe('sign-in', () => {
    it('answers a right password with a challenge instead of a session, then the code opens one', async () => {
      const { enrolledUser, login, mfa, codeFor } = setUp();
      const { userId, secret } = await enrolledUser();
      const signIn = await login(userId);
      expect(signIn.tokens).toBeUndefined();
      expect(signIn.mfaChallenge?.methods).toEqual(['TOTP', 'RECOVERY_CODE']);
      const done = await mfa.verify(signIn.mfaChallenge!.challenge, await codeFor(secret), HOME);
      expect(done.tokens.userId).toBe(userId);
      expect(done.deviceToken).toMatch(/^[\w-]{43}$/);
    });

    it('still refuses a wrong password without a challenge', async () => {
      const { enrolledUser, login } = setUp();
      const { userId } = await enrolledUser();
      expect(await appErrorOf(login(userId, 'wrong passphrase'))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });

    it('uses a challenge once', async () => {
      const { enrolledUser, challengeOf, mfa, codeFor, clock } = setUp();
      const { userId, secret } = await enrolledUser();
      const challenge = await challengeOf(userId);
      await mfa.verify(challenge, await codeFor(secret), HOME);
      clock.advance(30);
      const refused = await appErrorOf(mfa.verify(challenge, await codeFor(secret), HOME));
      expect(refused.code).toBe('UNAUTHENTICATED');
      expect(refused.message).toMatch(/challenge/);
    });

    it('refuses a code as wrong, not with a server error, on an instance whose clock is behind the step last used', async () => {
      const { enrolledUser, challengeOf, mfa, codeFor, clock } = setUp();
      const { userId, secret } = await enrolledUser();
      // The next step's code, accepted within the ±1 step window: it becomes the step last used.
      await mfa.verify(await challengeOf(userId), await codeFor(secret, 1), HOME);
      // Another auth instance, its clock a step behind (seconds of skew at a step's edge).
      clock.advance(-30);
      const challenge = await challengeOf(userId);
      const refused = await appErrorOf(mfa.verify(challenge, await codeFor(secret), HOME));
      const wrong = await appErrorOf(mfa.verify(challenge, '000000', HOME));
      expect({ code: refused.code, message: refused.message }).toEqual({
        code: wrong.code,
        message: wrong.message,
      });
    });

    it('refuses an expired challenge', async () => {
      const { enrolledUser, challengeOf, mfa, codeFor, clock } = setUp();
      const { userId, secret } = await enrolledUser();
      const challenge = await challengeOf(userId);
      clock.advance(301);
      expect(await appErrorOf(mfa.verify(challenge, await codeFor(secret), HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });

    it('accepts the codes of the step before and after, not two steps away', async () => {
      const { enrolledUser, challengeOf, mfa, codeFor, clock } = setUp();
      const { userId, secret } = await enrolledUser();
      clock.advance(90);
      const challenge = await challengeOf(userId);
      expect(
        await appErrorOf(mfa.verify(challenge, await codeFor(secret, -2), HOME)),
      ).toMatchObject({ code: 'UNAUTHENTICATED', message: 'Invalid code' });
      expect(await appErrorOf(mfa.verify(challenge, await codeFor(secret, 2), HOME))).toMatchObject(
        {
          code: 'UNAUTHENTICATED',
        },
      );
      expect((await mfa.verify(challenge, await codeFor(secret, -1), HOME)).tokens.userId).toBe(
        userId,
      );
      const next = await challengeOf(userId);
      expect((await mfa.verify(next, await codeFor(secret, 1), HOME)).tokens.userId).toBe(userId);
    });

    it('refuses a code used before (replay), and an older one after a newer was used', async () => {
      const { enrolledUser, challengeOf, mfa, codeFor } = setUp();
      const { userId, secret } = await enrolledUser();
      const code = await codeFor(secret);
      await mfa.verify(await challengeOf(userId), code, HOME);
      expect(await appErrorOf(mfa.verify(await challengeOf(userId), code, HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: 'Invalid code',
      });
      expect(
        await appErrorOf(mfa.verify(await challengeOf(userId), await codeFor(secret, -1), HOME)),
      ).toMatchObject({ code: 'UNAUTHENTICATED' });
    });

    it('takes each recovery code once, in any case and grouping, and says it was used', async () => {
      const { enrolledUser, challengeOf, mfa, eventsOf } = setUp();
      const { userId, recoveryCodes } = await enrolledUser();
      const [code] = recoveryCodes;
      const typed = code!.toUpperCase().replaceAll('-', ' ');
      expect((await mfa.verify(await challengeOf(userId), typed, HOME)).tokens.userId).toBe(userId);
      expect(await appErrorOf(mfa.verify(await challengeOf(userId), code!, HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      expect(eventsOf('auth.mfa_changed')).toContainEqual(
        expect.objectContaining({ userId, change: 'recovery_code_used', mfaEnrolled: true }),
      );
      expect((await mfa.status([userId]))[0]?.recoveryCodesLeft).toBe(RECOVERY_CODE_COUNT - 1);
    });

    it('counts wrong codes against the sign-in guess limits, and gives a challenge up after too many', async () => {
      const { enrolledUser, challengeOf, mfa, codeFor } = setUp({
        guessPolicy: { perClient: MAX_CHALLENGE_FAILURES + 1 },
      });
      const { userId, secret } = await enrolledUser();
      const challenge = await challengeOf(userId);
      for (let i = 0; i < MAX_CHALLENGE_FAILURES; i++)
        expect((await appErrorOf(mfa.verify(challenge, '000000', HOME))).code).toBe(
          'UNAUTHENTICATED',
        );
      // Used up: even the right code does not open it now.
      expect(
        (await appErrorOf(mfa.verify(challenge, await codeFor(secret), HOME))).message,
      ).toMatch(/challenge/);
      // One more wrong guess from this address, and the account is limited for it.
      expect((await appErrorOf(mfa.verify(await challengeOf(userId), '000001', HOME))).code).toBe(
        'UNAUTHENTICATED',
      );
      // Passwords and codes share the buckets: the password is not even checked now.
      expect((await appErrorOf(challengeOf(userId))).code).toBe('RATE_LIMITED');
    });
  });

  describe('sign-in with the code in the same request', () => {
    it('opens the session at once for a right TOTP code; a replayed one is refused', async () => {
      const { enrolledUser, credentials, codeFor } = setUp();
      const { userId, secret } = await enrolledUser();
      const code = await codeFor(secret);
      const attempt = {
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: 'Firefox',
        client: HOME,
        mfaCode: code,
      };
      const signIn = await credentials.login(attempt);
      expect(signIn.mfaChallenge).toBeUndefined();
      expect(signIn.tokens?.userId).toBe(userId);
      expect(signIn.tokens && signIn.deviceToken).toEqual(expect.any(String));
      expect(await appErrorOf(credentials.login(attempt))).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: 'Invalid code',
      });
    });

    it('counts a wrong code like a wrong password, and takes a recovery code once', async () => {
      const { enrolledUser, credentials, eventsOf } = setUp({ guessPolicy: { perClient: 2 } });
      const { userId, recoveryCodes } = await enrolledUser();
      const attempt = (mfaCode: string) =>
        credentials.login({
          userId,
          email: EMAIL,
          password: PASSWORD,
          userAgent: undefined,
          client: HOME,
          mfaCode,
        });
      expect((await appErrorOf(attempt('000000'))).message).toBe('Invalid code');
      const recovered = await attempt(recoveryCodes[0] ?? '');
      expect(recovered.tokens?.userId).toBe(userId);
      expect(eventsOf('auth.mfa_changed')).toContainEqual(
        expect.objectContaining({ userId, change: 'recovery_code_used' }),
      );
      expect((await appErrorOf(attempt('111111'))).message).toBe('Invalid code');
      expect((await appErrorOf(attempt('222222'))).code).toBe('RATE_LIMITED');
    });

    it('ignores a code for an account without TOTP', async () => {
      const { credentials } = setUp();
      const userId = randomUUID();
      await credentials.create(userId, PASSWORD, undefined);
      const signIn = await credentials.login({
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: undefined,
        client: HOME,
        mfaCode: '123456',
      });
      expect(signIn.tokens?.userId).toBe(userId);
    });
  });

  describe('the first factor', () => {
    it('ends the other sessions when TOTP is the first factor turned on, and only then', async () => {
      const { credentials, mfa, codeFor, login, fakes, clock } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      // A session opened elsewhere with the password alone (the owner's, or a phisher's).
      const signedIn = await login(userId);
      if (!signedIn.tokens) throw new Error('expected a session');
      const elsewhere = signedIn.tokens.sessionId;
      const { secret } = await mfa.beginTotp(userId, sessionId, EMAIL);
      await mfa.confirmTotp(userId, sessionId, await codeFor(secret), HOME);
      const revoked = (id: string | undefined) =>
        !!fakes.sessions.sessions.get(id ?? '')?.revokedAt;
      expect(revoked(elsewhere)).toBe(true);
      expect(revoked(sessionId)).toBe(false);
      expect(fakes.transactions.events).toContainEqual(
        expect.objectContaining({
          type: 'auth.session_revoked',
          payload: { userId, sessionId: elsewhere, reason: 'logout_all' },
        }),
      );
      // Signed in again with both factors: a later factor change ends nothing.
      clock.advance(30);
      // The device token earned with the password alone is forgotten: a new one comes back.
      const withOldDevice = { ...HOME, deviceToken: signedIn.deviceToken };
      const challenge =
        (await login(userId, PASSWORD, withOldDevice)).mfaChallenge?.challenge ?? '';
      const secondSignIn = await mfa.verify(challenge, await codeFor(secret), withOldDevice);
      expect(secondSignIn.deviceToken).not.toBe(signedIn.deviceToken);
      const second = secondSignIn.tokens.sessionId;
      await mfa.regenerateRecoveryCodes(userId, sessionId);
      expect(revoked(second)).toBe(false);
    });
  });

  describe('sign-in races', () => {
    it('checks no more than the allowed wrong codes on one challenge, however many arrive at once', async () => {
      const { enrolledUser, challengeOf, mfa } = setUp({ guessPolicy: { perClient: 100 } });
      const { userId } = await enrolledUser();
      const challenge = await challengeOf(userId);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          appErrorOf(mfa.verify(challenge, String(100000 + i), { address: `203.0.113.${i}` })),
        ),
      );
      const checked = answers.filter((error) => error?.message === 'Invalid code');
      expect(checked).toHaveLength(MAX_CHALLENGE_FAILURES);
      expect(answers.filter((error) => error?.message.includes('sign in again'))).toHaveLength(
        20 - MAX_CHALLENGE_FAILURES,
      );
    });
  });

  describe('managing factors', () => {
    it('with a factor on, needs a recent sign-in to change the password or delete the account: an old session plus the password is not enough', async () => {
      const { enrolledUser, credentials, mfa, codeFor, clock, login } = setUp();
      const { userId, sessionId, secret } = await enrolledUser();
      clock.advance(600);
      const change = {
        currentPassword: PASSWORD,
        newPassword: 'a new passphrase',
        keepSessionId: sessionId,
        client: HOME,
      };
      const removal = { actorId: userId, currentPassword: PASSWORD, sessionId, client: HOME };
      for (const refused of [
        await appErrorOf(credentials.changePassword(userId, change)),
        await appErrorOf(credentials.delete(userId, removal)),
      ])
        expect(refused).toMatchObject({ code: 'FORBIDDEN', reason: 'REAUTHENTICATION_REQUIRED' });
      // Nothing changed: the old password still opens the challenge.
      expect((await login(userId)).mfaChallenge).toBeDefined();
      await mfa.reauthenticate(userId, sessionId, { code: await codeFor(secret) }, HOME);
      await credentials.changePassword(userId, change);
      expect((await login(userId, 'a new passphrase')).mfaChallenge).toBeDefined();
    });

    it('needs a recent sign-in or re-authentication to disable TOTP, then tells the user', async () => {
      const { enrolledUser, mfa, clock, eventsOf, login, codeFor } = setUp();
      const { userId, sessionId, secret } = await enrolledUser();
      clock.advance(301);
      expect(await appErrorOf(mfa.disableTotp(userId, sessionId))).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'REAUTHENTICATION_REQUIRED',
        message: 'Sign in again or reauthenticate first (needed within 5 minutes)',
      });
      const until = await mfa.reauthenticate(
        userId,
        sessionId,
        { code: await codeFor(secret) },
        HOME,
      );
      expect(until.getTime()).toBe(clock.now().getTime() + 300_000);
      await mfa.disableTotp(userId, sessionId);
      // The state it leaves, with a version after the enrolment's: a consumer keeps the newer.
      expect(eventsOf('auth.mfa_changed')).toEqual([
        { userId, change: 'totp_enabled', mfaEnrolled: true, stateVersion: 1 },
        { userId, change: 'totp_disabled', mfaEnrolled: false, stateVersion: 2 },
      ]);
      expect(await mfa.stateVersions([userId])).toEqual(new Map([[userId, 2]]));
      expect((await login(userId)).tokens?.userId).toBe(userId);
      expect(await mfa.status([userId])).toEqual([]);
    });

    it('re-authenticates with the password while no second factor is on', async () => {
      const { credentials, mfa, clock } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      clock.advance(600);
      expect(
        await appErrorOf(mfa.reauthenticate(userId, sessionId, { password: 'nope' }, HOME)),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
      const until = await mfa.reauthenticate(userId, sessionId, { password: PASSWORD }, HOME);
      expect(until.getTime()).toBe(clock.now().getTime() + 300_000);
      await mfa.beginTotp(userId, sessionId, EMAIL);
    });

    it('with a second factor on, the password alone does not re-authenticate (an old session plus a phished password buys no factor)', async () => {
      const { enrolledUser, mfa, clock } = setUp();
      const { userId, sessionId } = await enrolledUser();
      clock.advance(600);
      expect(
        await appErrorOf(mfa.reauthenticate(userId, sessionId, { password: PASSWORD }, HOME)),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
      expect(await appErrorOf(mfa.regenerateRecoveryCodes(userId, sessionId))).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'REAUTHENTICATION_REQUIRED',
      });
    });

    it('turns on only the secret whose code was checked, not one an enrolment begun meanwhile put in its place', async () => {
      const { credentials, mfa, repository, codeFor, clock, login } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const { secret: first } = await mfa.beginTotp(userId, sessionId, EMAIL);
      // Another tab begins again between the code check and the write that turns TOTP on.
      const confirm = repository.confirm.bind(repository);
      let second = '';
      repository.confirm = async (...args) => {
        second = (await mfa.beginTotp(userId, sessionId, EMAIL)).secret;
        return confirm(...args);
      };
      expect(
        await appErrorOf(mfa.confirmTotp(userId, sessionId, await codeFor(first), HOME)),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'code' });
      expect(second).not.toBe(first);
      // Nothing was turned on: the password alone still signs in.
      clock.advance(30);
      expect((await login(userId)).tokens?.userId).toBe(userId);
    });

    it('re-authenticates with a TOTP code too, once per code', async () => {
      const { enrolledUser, mfa, clock, codeFor } = setUp();
      const { userId, sessionId, secret } = await enrolledUser();
      clock.advance(600);
      const code = await codeFor(secret);
      await mfa.reauthenticate(userId, sessionId, { code }, HOME);
      expect(await appErrorOf(mfa.reauthenticate(userId, sessionId, { code }, HOME))).toMatchObject(
        { code: 'BAD_USER_INPUT', field: 'code' },
      );
    });

    it('regenerates the recovery codes: the old ones stop working', async () => {
      const { enrolledUser, mfa, challengeOf, eventsOf } = setUp();
      const { userId, sessionId, recoveryCodes } = await enrolledUser();
      const fresh = await mfa.regenerateRecoveryCodes(userId, sessionId);
      expect(fresh).toHaveLength(RECOVERY_CODE_COUNT);
      expect(fresh).not.toContain(recoveryCodes[0]);
      expect(
        await appErrorOf(mfa.verify(await challengeOf(userId), recoveryCodes[0]!, HOME)),
      ).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect((await mfa.verify(await challengeOf(userId), fresh[0]!, HOME)).tokens.userId).toBe(
        userId,
      );
      expect(eventsOf('auth.mfa_changed')).toContainEqual(
        expect.objectContaining({
          userId,
          change: 'recovery_codes_regenerated',
          mfaEnrolled: true,
        }),
      );
    });

    it('refuses to manage a factor that is not there, and a session that ended', async () => {
      const { credentials, mfa } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      expect((await appErrorOf(mfa.disableTotp(userId, sessionId))).code).toBe('NOT_FOUND');
      expect((await appErrorOf(mfa.regenerateRecoveryCodes(userId, sessionId))).code).toBe(
        'NOT_FOUND',
      );
      expect((await appErrorOf(mfa.disableTotp(userId, randomUUID()))).code).toBe(
        'UNAUTHENTICATED',
      );
    });
  });
});

describe('spanOf', () => {
  it('says the re-authentication window as a person reads it, also when it is under a minute', () => {
    expect([20, 1, 60, 90, 300].map(spanOf)).toEqual([
      '20 seconds',
      '1 second',
      '1 minute',
      '90 seconds',
      '5 minutes',
    ]);
  });
});
