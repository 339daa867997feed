import { randomUUID } from 'node:crypto';
import { generate } from 'otplib';
import { createSoftwareAuthenticator } from '@platform/webauthn-testing';
import { describe, expect, it } from 'vitest';
import type { GuessingClient } from './password-guard';
import { MAX_RESPONSE_JSON_LENGTH } from './passkey.service';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { TEST_RELYING_PARTY, wireOverFakes } from './testing/auth.wiring';

const PASSWORD = 'correct horse battery';
const EMAIL = 'ada@example.com';
const ORIGIN = TEST_RELYING_PARTY.origins[0] ?? '';
const HOME: GuessingClient = { address: '198.51.100.1' };

function setUp() {
  const clock = createTestClock(new Date('2026-11-30T12:00:00Z'));
  const wired = wireOverFakes({ clock, guessPolicy: { perClient: 3 } });
  const { credentials, passkeys, mfa, fakes } = wired;
  const eventsOf = (type: string) =>
    fakes.transactions.events.filter((event) => event.type === type).map((e) => e.payload);

  /** A user just signed in (recent authentication), with a software authenticator. */
  async function signedInUser() {
    const userId = randomUUID();
    const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
    return { userId, sessionId, authenticator: createSoftwareAuthenticator(ORIGIN) };
  }

  async function withPasskey() {
    const user = await signedInUser();
    const options = await passkeys.beginRegistration(user.userId, user.sessionId, EMAIL);
    const passkey = await passkeys.finishRegistration(
      user.userId,
      user.sessionId,
      user.authenticator.create(options),
      'Laptop',
    );
    return { ...user, passkey };
  }

  const signIn = async (authenticator: ReturnType<typeof createSoftwareAuthenticator>) =>
    passkeys.finishLogin(authenticator.get(await passkeys.beginLogin()), 'Firefox', HOME);

  return { clock, credentials, passkeys, mfa, fakes, eventsOf, signedInUser, withPasskey, signIn };
}

describe('PasskeyService', () => {
  describe('registration', () => {
    it('asks for a discoverable, user-verified credential of this relying party', async () => {
      const { passkeys, signedInUser } = setUp();
      const { userId, sessionId } = await signedInUser();
      const options = JSON.parse(await passkeys.beginRegistration(userId, sessionId, EMAIL)) as {
        challenge: string;
      };
      expect(options).toMatchObject({
        rp: { id: 'localhost', name: 'Platform' },
        user: { name: EMAIL },
        attestation: 'none',
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      });
      expect(options.challenge).toMatch(/^[\w-]{43}$/);
    });

    it('stores the verified credential and sends a security notice', async () => {
      const { passkeys, fakes, eventsOf, withPasskey } = setUp();
      const { userId, passkey, authenticator } = await withPasskey();
      expect(passkey).toMatchObject({ name: 'Laptop', transports: ['internal'], lastUsedAt: null });
      const [stored] = [...fakes.passkeys.rows.values()];
      expect(stored).toMatchObject({
        userId,
        credentialId: authenticator.credentials[0]?.id,
        counter: 0,
      });
      expect(await passkeys.list(userId)).toEqual([passkey]);
      expect(eventsOf('auth.mfa_changed')).toEqual([
        { userId, change: 'passkey_added', mfaEnrolled: true, stateVersion: 1 },
      ]);
    });

    it('keeps only the transports WebAuthn defines, and refuses a name with control or bidi characters', async () => {
      const { passkeys, signedInUser } = setUp();
      const user = await signedInUser();
      const options = await passkeys.beginRegistration(user.userId, user.sessionId, EMAIL);
      const response = JSON.parse(user.authenticator.create(options)) as {
        response: { transports: unknown[] };
      };
      response.response.transports = [
        'usb',
        'internal',
        'usb',
        'x'.repeat(5_000),
        42,
        'carrier-pigeon',
      ];
      const passkey = await passkeys.finishRegistration(
        user.userId,
        user.sessionId,
        JSON.stringify(response),
        'Laptop',
      );
      expect(passkey.transports).toEqual(['usb', 'internal']);
      const another = await passkeys.beginRegistration(user.userId, user.sessionId, EMAIL);
      const spoofed = await appErrorOf(
        passkeys.finishRegistration(
          user.userId,
          user.sessionId,
          user.authenticator.create(another),
          'Laptop\u202Egnp.exe',
        ),
      );
      expect(spoofed).toMatchObject({ code: 'BAD_USER_INPUT' });
    });

    it('needs a recent sign-in or re-authentication', async () => {
      const { passkeys, clock, signedInUser } = setUp();
      const { userId, sessionId } = await signedInUser();
      clock.advance(301);
      expect(await appErrorOf(passkeys.beginRegistration(userId, sessionId, EMAIL))).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'REAUTHENTICATION_REQUIRED',
      });
    });

    it('refuses a response from another origin, a used challenge, or another session', async () => {
      const { passkeys, credentials, signedInUser } = setUp();
      const { userId, sessionId, authenticator } = await signedInUser();

      let options = await passkeys.beginRegistration(userId, sessionId, EMAIL);
      const foreign = authenticator.create(options, { origin: 'https://evil.example' });
      expect(
        await appErrorOf(passkeys.finishRegistration(userId, sessionId, foreign, undefined)),
      ).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'response',
      });
      // That try used the challenge up: the same ceremony cannot be retried.
      const right = authenticator.create(options);
      expect(
        await appErrorOf(passkeys.finishRegistration(userId, sessionId, right, undefined)),
      ).toMatchObject({
        code: 'BAD_USER_INPUT',
        message: 'response: its challenge is unknown, used or expired; begin again',
      });

      options = await passkeys.beginRegistration(userId, sessionId, EMAIL);
      const other = await credentials.login({
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: undefined,
        client: HOME,
      }); // a second session of the same user
      const response = authenticator.create(options);
      const otherSession = other.tokens?.sessionId ?? '';
      expect(
        await appErrorOf(passkeys.finishRegistration(userId, otherSession, response, undefined)),
      ).toMatchObject({ code: 'BAD_USER_INPUT' });
      expect(await passkeys.list(userId)).toEqual([]);
    });

    it('refuses an authenticator that did not verify the user', async () => {
      const { passkeys, signedInUser } = setUp();
      const { userId, sessionId, authenticator } = await signedInUser();
      const options = await passkeys.beginRegistration(userId, sessionId, EMAIL);
      const response = authenticator.create(options, { userVerified: false });
      expect(
        await appErrorOf(passkeys.finishRegistration(userId, sessionId, response, undefined)),
      ).toMatchObject({
        code: 'BAD_USER_INPUT',
      });
    });

    it('refuses what is not a registration response, and oversized input, before any work', async () => {
      const { passkeys, signedInUser } = setUp();
      const { userId, sessionId } = await signedInUser();
      for (const junk of ['', 'null', '{"id":"x"}', 'x'.repeat(MAX_RESPONSE_JSON_LENGTH + 1)])
        expect(
          await appErrorOf(passkeys.finishRegistration(userId, sessionId, junk, undefined)),
        ).toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'response',
        });
    });
  });

  describe('sign-in', () => {
    it('opens a session for the passkey owner and moves the counter forward', async () => {
      const { passkeys, fakes, clock, withPasskey, signIn } = setUp();
      const { userId, authenticator } = await withPasskey();
      clock.advance(60);
      const { tokens, deviceToken } = await signIn(authenticator);
      expect(tokens.userId).toBe(userId);
      expect(deviceToken).toMatch(/^[\w-]{43}$/);
      const [stored] = [...fakes.passkeys.rows.values()];
      expect(stored?.counter).toBe(1);
      expect((await passkeys.list(userId))[0]?.lastUsedAt).toEqual(clock.now());
    });

    it('refuses a replayed challenge', async () => {
      const { passkeys, withPasskey } = setUp();
      const { authenticator } = await withPasskey();
      const options = await passkeys.beginLogin();
      await passkeys.finishLogin(authenticator.get(options), undefined, HOME);
      const again = authenticator.get(options);
      expect(await appErrorOf(passkeys.finishLogin(again, undefined, HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });

    it('refuses an expired challenge', async () => {
      const { passkeys, clock, withPasskey } = setUp();
      const { authenticator } = await withPasskey();
      const options = await passkeys.beginLogin();
      clock.advance(121);
      expect(
        await appErrorOf(passkeys.finishLogin(authenticator.get(options), undefined, HOME)),
      ).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });

    it('refuses a cloned authenticator whose counter went backwards', async () => {
      const { withPasskey, signIn } = setUp();
      const { authenticator } = await withPasskey();
      const original = authenticator.credentials[0]!;
      const clone = { ...original };
      await signIn(authenticator); // counter 1
      await signIn(authenticator); // counter 2
      const cloned = createSoftwareAuthenticator(ORIGIN);
      cloned.credentials.push(clone); // its next assertion says 1
      expect(await appErrorOf(signIn(cloned))).toMatchObject({ code: 'UNAUTHENTICATED' });
    });

    it('accepts an authenticator that always reports 0', async () => {
      const { withPasskey, signIn } = setUp();
      const { userId, authenticator } = await withPasskey();
      const credential = authenticator.credentials[0]!;
      credential.counter = -1; // each assertion reports counter + 1 = 0
      expect((await signIn(authenticator)).tokens.userId).toBe(userId);
      credential.counter = -1;
      expect((await signIn(authenticator)).tokens.userId).toBe(userId);
    });

    it('counts failed assertions against the sign-in guess limits', async () => {
      const { passkeys, credentials, withPasskey } = setUp();
      const { userId, authenticator } = await withPasskey();
      for (let i = 0; i < 3; i += 1) {
        const wrongOrigin = authenticator.get(await passkeys.beginLogin(), {
          origin: 'https://evil.example',
        });
        expect(await appErrorOf(passkeys.finishLogin(wrongOrigin, undefined, HOME))).toMatchObject({
          code: 'UNAUTHENTICATED',
        });
      }
      // The limit is the password's: the next guess from this address is not even checked.
      const right = authenticator.get(await passkeys.beginLogin());
      expect(await appErrorOf(passkeys.finishLogin(right, undefined, HOME))).toMatchObject({
        code: 'RATE_LIMITED',
      });
      const password = await appErrorOf(
        credentials.login({
          userId,
          email: EMAIL,
          password: PASSWORD,
          userAgent: undefined,
          client: HOME,
        }),
      );
      expect(password.code).toBe('RATE_LIMITED');
    });

    it('refuses an unknown credential', async () => {
      const { passkeys, signedInUser } = setUp();
      const { authenticator, userId, sessionId } = await signedInUser();
      authenticator.create(await passkeys.beginRegistration(userId, sessionId, EMAIL)); // never finished
      const response = authenticator.get(await passkeys.beginLogin());
      expect(await appErrorOf(passkeys.finishLogin(response, undefined, HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });
  });

  describe('completing an MFA challenge', () => {
    /** A user with a passkey and TOTP on, and the challenge a right password earned. */
    async function challenged() {
      const world = setUp();
      const { userId, sessionId, authenticator } = await world.withPasskey();
      const { secret } = await world.mfa.beginTotp(userId, sessionId, EMAIL);
      const code = await generate({
        secret,
        epoch: Math.floor(world.clock.now().getTime() / 1000),
      });
      await world.mfa.confirmTotp(userId, sessionId, code, HOME);
      const signIn = await world.credentials.login({
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: 'Firefox',
        client: HOME,
      });
      if (!signIn.mfaChallenge) throw new Error('expected an MFA challenge');
      return { ...world, userId, authenticator, challenge: signIn.mfaChallenge };
    }

    it("offers PASSKEY, asks for that user's passkeys, and opens the session once", async () => {
      const { passkeys, mfa, userId, authenticator, challenge } = await challenged();
      expect(challenge.methods).toEqual(['TOTP', 'RECOVERY_CODE', 'PASSKEY']);
      const options = await passkeys.beginLogin(challenge.challenge);
      expect(
        (JSON.parse(options) as { allowCredentials: { id: string }[] }).allowCredentials,
      ).toEqual([expect.objectContaining({ id: authenticator.credentials[0]?.id })]);
      const { tokens } = await passkeys.finishLogin(authenticator.get(options), undefined, HOME);
      expect(tokens.userId).toBe(userId);
      // The challenge is used up: neither a code nor another passkey ceremony completes it again.
      expect(await appErrorOf(mfa.verify(challenge.challenge, '000000', HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      expect(await appErrorOf(passkeys.beginLogin(challenge.challenge))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });

    it("refuses another user's passkey; a failed assertion counts as a wrong answer", async () => {
      const { passkeys, fakes, challenge, authenticator, withPasskey } = await challenged();
      const other = await withPasskey();
      const foreign = other.authenticator.get(await passkeys.beginLogin(challenge.challenge));
      expect(await appErrorOf(passkeys.finishLogin(foreign, undefined, HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      const wrongOrigin = authenticator.get(await passkeys.beginLogin(challenge.challenge), {
        origin: 'https://evil.example',
      });
      expect(await appErrorOf(passkeys.finishLogin(wrongOrigin, undefined, HOME))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      expect([...fakes.mfa.challenges.values()].map((c) => c.failures)).toEqual([1]);
    });

    it('asks a passkey-only account for its passkey after a right password: the password alone opens no session', async () => {
      const { credentials, passkeys, withPasskey } = setUp();
      const { userId, authenticator } = await withPasskey();
      const signIn = await credentials.login({
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: 'Firefox',
        client: HOME,
      });
      expect(signIn.tokens).toBeUndefined();
      expect(signIn.mfaChallenge?.methods).toEqual(['PASSKEY']);
      const options = await passkeys.beginLogin(signIn.mfaChallenge?.challenge);
      const { tokens } = await passkeys.finishLogin(authenticator.get(options), undefined, HOME);
      expect(tokens.userId).toBe(userId);
    });

    it('refuses to begin with an unknown challenge, or for a user without passkeys', async () => {
      const { passkeys, mfa, credentials, clock } = setUp();
      expect(await appErrorOf(passkeys.beginLogin('x'.repeat(43)))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const { secret } = await mfa.beginTotp(userId, sessionId, EMAIL);
      const epoch = Math.floor(clock.now().getTime() / 1000);
      await mfa.confirmTotp(userId, sessionId, await generate({ secret, epoch }), HOME);
      const signIn = await credentials.login({
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: undefined,
        client: HOME,
      });
      expect(signIn.mfaChallenge?.methods).toEqual(['TOTP', 'RECOVERY_CODE']);
      expect(await appErrorOf(passkeys.beginLogin(signIn.mfaChallenge?.challenge))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    });
  });

  describe('re-authentication', () => {
    it('proves the session again with a passkey, so it may manage its factors', async () => {
      const { passkeys, clock, withPasskey } = setUp();
      const { userId, sessionId, passkey, authenticator } = await withPasskey();
      clock.advance(301);
      const options = await passkeys.beginReauthentication(userId, sessionId);
      expect(
        (JSON.parse(options) as { allowCredentials: { id: string }[] }).allowCredentials,
      ).toEqual([expect.objectContaining({ id: authenticator.credentials[0]?.id })]);
      const until = await passkeys.reauthenticate(
        userId,
        sessionId,
        authenticator.get(options),
        HOME,
      );
      expect(until).toEqual(new Date(clock.now().getTime() + 300_000));
      await passkeys.remove(userId, sessionId, passkey.id);
      expect(await passkeys.list(userId)).toEqual([]);
    });

    it('refuses another origin, a replay, another session, and a user without passkeys', async () => {
      const { passkeys, credentials, withPasskey, signedInUser } = setUp();
      const { userId, sessionId, authenticator } = await withPasskey();
      const options = await passkeys.beginReauthentication(userId, sessionId);
      const foreign = authenticator.get(options, { origin: 'https://evil.example' });
      expect(
        await appErrorOf(passkeys.reauthenticate(userId, sessionId, foreign, HOME)),
      ).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'response',
      });
      const replay = authenticator.get(options);
      expect(
        await appErrorOf(passkeys.reauthenticate(userId, sessionId, replay, HOME)),
      ).toMatchObject({
        code: 'BAD_USER_INPUT',
      });
      const other = await credentials.login({
        userId,
        email: EMAIL,
        password: PASSWORD,
        userAgent: undefined,
        client: HOME,
      });
      const elsewhere = authenticator.get(await passkeys.beginReauthentication(userId, sessionId));
      const otherSession = other.tokens?.sessionId ?? '';
      expect(
        await appErrorOf(passkeys.reauthenticate(userId, otherSession, elsewhere, HOME)),
      ).toMatchObject({ code: 'BAD_USER_INPUT' });
      const without = await signedInUser();
      expect(
        await appErrorOf(passkeys.beginReauthentication(without.userId, without.sessionId)),
      ).toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  describe('removal', () => {
    it('needs recent authentication, removes the passkey, ends the other sessions and sends a notice', async () => {
      const { passkeys, clock, mfa, eventsOf, withPasskey, signIn, fakes } = setUp();
      const { userId, sessionId, passkey, authenticator } = await withPasskey();
      clock.advance(301);
      expect(await appErrorOf(passkeys.remove(userId, sessionId, passkey.id))).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'REAUTHENTICATION_REQUIRED',
      });
      // The password alone no longer counts once a passkey is on; the passkey itself does.
      expect(
        await appErrorOf(mfa.reauthenticate(userId, sessionId, { password: PASSWORD }, HOME)),
      ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
      // A session opened elsewhere with the passkey (its owner's, or whoever held the key).
      const elsewhere = (await signIn(authenticator)).tokens.sessionId;
      const options = await passkeys.beginReauthentication(userId, sessionId);
      await passkeys.reauthenticate(userId, sessionId, authenticator.get(options), HOME);
      await passkeys.remove(userId, sessionId, passkey.id);
      expect(await passkeys.list(userId)).toEqual([]);
      // Every other session ends with it; the one that removed it goes on.
      const revoked = (id: string) => !!fakes.sessions.sessions.get(id)?.revokedAt;
      expect([revoked(elsewhere), revoked(sessionId)]).toEqual([true, false]);
      expect(eventsOf('auth.mfa_changed')).toEqual([
        { userId, change: 'passkey_added', mfaEnrolled: true, stateVersion: 1 },
        { userId, change: 'passkey_removed', mfaEnrolled: false, stateVersion: 2 },
      ]);
      expect(await appErrorOf(signIn(authenticator))).toMatchObject({ code: 'UNAUTHENTICATED' });
    });

    it("refuses another user's passkey as not found", async () => {
      const { passkeys, signedInUser, withPasskey } = setUp();
      const { passkey } = await withPasskey();
      const other = await signedInUser();
      expect(
        await appErrorOf(passkeys.remove(other.userId, other.sessionId, passkey.id)),
      ).toMatchObject({
        code: 'NOT_FOUND',
      });
    });
  });

  it('counts passkeys per user for the MFA status', async () => {
    const { passkeys, withPasskey } = setUp();
    const { userId } = await withPasskey();
    expect(await passkeys.countByUser([userId, randomUUID(), 'not-an-id'])).toEqual(
      new Map([[userId, 1]]),
    );
  });
});
