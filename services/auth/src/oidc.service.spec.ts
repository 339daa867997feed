import { randomUUID } from 'node:crypto';
import { generate } from 'otplib';
import { describe, expect, it } from 'vitest';
import type { OidcIdentity } from './oidc.client';
import type { GuessingClient } from './password-guard';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { TEST_OIDC_PROVIDER, wireOverFakes } from './testing/auth.wiring';

const PASSWORD = 'correct horse battery';
const REDIRECT_URI = TEST_OIDC_PROVIDER.redirectUris[0] ?? '';
const HOME: GuessingClient = { address: '198.51.100.1' };

function setUp() {
  const clock = createTestClock(new Date('2026-11-30T12:00:00Z'));
  const wired = wireOverFakes({ clock, guessPolicy: { perClient: 3 } });
  const { oidc, credentials, mfa, passkeys, fakes } = wired;
  const provider = fakes.oidcClient;
  const changes = () =>
    fakes.transactions.events
      .filter((event) => event.type === 'auth.mfa_changed')
      .map((event) => (event.payload as { change: string }).change);

  /** Begins a sign-in and answers the callback as the provider would for `identity`. */
  async function callbackFor(identity: OidcIdentity) {
    const { state, binding } = await oidc.begin('idp', REDIRECT_URI);
    const code = `code-${randomUUID()}`;
    provider.codes.set(code, identity);
    return { code, state, binding };
  }
  async function complete(identity: OidcIdentity, client = HOME) {
    const { code, state, binding } = await callbackFor(identity);
    return oidc.complete('idp', code, state, binding, 'Firefox', client);
  }
  const person = (overrides: Partial<OidcIdentity> = {}): OidcIdentity => ({
    subject: randomUUID(),
    email: `${randomUUID().slice(0, 8)}@example.com`,
    emailVerified: true,
    name: 'Ada',
    ...overrides,
  });
  /** A new account made for a verified identity, signed in (recently). */
  async function oidcUser(identity = person()) {
    const completion = await complete(identity);
    if (completion.kind !== 'unlinked')
      throw new Error(`expected unlinked, got ${completion.kind}`);
    const userId = randomUUID();
    const tokens = await oidc.createAccount(completion.linkToken, userId, identity.email!, 'x');
    return { userId, sessionId: tokens.sessionId, identity };
  }

  return {
    clock,
    oidc,
    credentials,
    mfa,
    passkeys,
    fakes,
    provider,
    changes,
    callbackFor,
    complete,
    person,
    oidcUser,
  };
}

describe('OidcService', () => {
  describe('begin', () => {
    it('sends PKCE S256, a state and a nonce, and keeps the verifier and nonce for the callback', async () => {
      const { oidc, provider } = setUp();
      const { url, state, binding, expiresAt } = await oidc.begin('idp', REDIRECT_URI);
      const params = new URL(url).searchParams;
      expect(params.get('state')).toBe(state);
      expect(params.get('code_challenge')).toMatch(/^[\w-]{43}$/);
      expect(expiresAt).toEqual(new Date('2026-11-30T12:10:00Z'));
      provider.codes.set('c', { subject: 's', email: undefined, emailVerified: false, name: '' });
      expect(url).not.toContain(binding);
      await appErrorOf(oidc.complete('idp', 'c', state, binding, undefined, HOME));
      expect(provider.redeemed[0]).toMatchObject({
        redirectUri: REDIRECT_URI,
        nonce: params.get('nonce'),
      });
      expect(provider.redeemed[0]?.codeVerifier).toMatch(/^[\w-]{43}$/);
    });

    it('refuses a redirect URI off the allow-list (exact match) and an unknown provider', async () => {
      const { oidc } = setUp();
      for (const uri of [`${REDIRECT_URI}/x`, `${REDIRECT_URI}?next=evil`, 'https://evil.example/'])
        expect(await appErrorOf(oidc.begin('idp', uri))).toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'redirectUri',
        });
      expect(await appErrorOf(oidc.begin('google', REDIRECT_URI))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'provider',
      });
    });

    it('answers SERVICE_UNAVAILABLE while the provider is down, and works again after', async () => {
      const { oidc, provider } = setUp();
      provider.down = true;
      expect((await appErrorOf(oidc.begin('idp', REDIRECT_URI))).code).toBe('SERVICE_UNAVAILABLE');
      provider.down = false;
      await expect(oidc.begin('idp', REDIRECT_URI)).resolves.toHaveProperty('state');
    });
  });

  describe('complete', () => {
    it('completes only with the binding of the browser that began (a code and state elsewhere are worth nothing)', async () => {
      const { oidc, callbackFor, person, provider } = setUp();
      const { code, state, binding } = await callbackFor(person());
      // The attacker's own flow's binding, or none, with the victim's (or attacker's) callback.
      const other = (await oidc.begin('idp', REDIRECT_URI)).binding;
      for (const wrong of [other, '', 'x'.repeat(43)])
        expect(
          await appErrorOf(oidc.complete('idp', code, state, wrong, undefined, HOME)),
        ).toMatchObject({ code: 'UNAUTHENTICATED' });
      // The state was taken by the first try: the right binding is too late now.
      const owner = { address: '198.51.100.77' };
      expect(
        await appErrorOf(oidc.complete('idp', code, state, binding, undefined, owner)),
      ).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(provider.redeemed).toHaveLength(0);
    });

    it('uses a state once, and only before it expires', async () => {
      const { oidc, clock, provider, callbackFor, person } = setUp();
      const { code, state, binding } = await callbackFor(person());
      await oidc.complete('idp', code, state, binding, undefined, HOME);
      const replay = await appErrorOf(oidc.complete('idp', code, state, binding, undefined, HOME));
      expect(replay).toMatchObject({ code: 'UNAUTHENTICATED' });

      const late = await callbackFor(person());
      clock.advance(601);
      expect(
        (
          await appErrorOf(
            oidc.complete('idp', late.code, late.state, late.binding, undefined, HOME),
          )
        ).code,
      ).toBe('UNAUTHENTICATED');
      expect(provider.redeemed).toHaveLength(1);
    });

    it('offers a verified unknown identity for an account, linking nothing yet', async () => {
      const { complete, person, fakes } = setUp();
      const ada = person();
      const completion = await complete(ada);
      expect(completion).toMatchObject({ kind: 'unlinked', email: ada.email, provider: 'idp' });
      expect(fakes.links.rows.size).toBe(0);
    });

    it('refuses an unknown identity whose email is not verified (false or missing), creating nothing', async () => {
      const { complete, person, fakes } = setUp();
      for (const identity of [person({ emailVerified: false }), person({ email: undefined })]) {
        const refused = await appErrorOf(complete(identity));
        expect(refused).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'EMAIL_NOT_VERIFIED' });
      }
      expect(fakes.links.rows.size).toBe(0);
    });

    it('signs a linked identity in by (provider, subject), whatever its email says now', async () => {
      const { complete, oidcUser } = setUp();
      const { userId, identity } = await oidcUser();
      const again = await complete({
        ...identity,
        email: 'other@example.com',
        emailVerified: false,
      });
      expect(again).toMatchObject({ kind: 'signed-in', userId });
      if (again.kind === 'signed-in') expect(again.deviceToken).toMatch(/^[\w-]{43}$/);
    });

    it('answers the MFA challenge a password would for a linked user with TOTP on', async () => {
      const { complete, oidcUser, mfa, clock } = setUp();
      const { userId, sessionId, identity } = await oidcUser();
      const { secret } = await mfa.beginTotp(userId, sessionId, 'ada');
      const epoch = Math.floor(clock.now().getTime() / 1000);
      await mfa.confirmTotp(userId, sessionId, await generate({ secret, epoch }), HOME);
      const challenged = await complete(identity);
      expect(challenged).toMatchObject({ kind: 'mfa', userId });
      if (challenged.kind === 'mfa') expect(challenged.challenge.methods).toContain('TOTP');
    });

    it('counts failures per address and provider, then RATE_LIMITED without redeeming', async () => {
      const { oidc, provider, callbackFor, person } = setUp();
      for (let i = 0; i < 3; i++)
        expect(
          (await appErrorOf(oidc.complete('idp', 'bad', `s${i}`, 'x', undefined, HOME))).code,
        ).toBe('UNAUTHENTICATED');
      const { code, state, binding } = await callbackFor(person());
      const limited = await appErrorOf(oidc.complete('idp', code, state, binding, undefined, HOME));
      expect(limited.code).toBe('RATE_LIMITED');
      expect(provider.redeemed).toHaveLength(0);
      const elsewhere = await oidc.complete('idp', code, state, binding, undefined, {
        address: '203.0.113.5',
      });
      expect(elsewhere.kind).toBe('unlinked');
    });
  });

  describe('createAccount', () => {
    it('never links an account that already has a way to sign in', async () => {
      const { oidc, credentials, complete, person, fakes } = setUp();
      const userId = randomUUID();
      await credentials.create(userId, PASSWORD, undefined);
      const ada = person();
      const completion = await complete(ada);
      if (completion.kind !== 'unlinked') throw new Error('expected unlinked');
      const refused = await appErrorOf(
        oidc.createAccount(completion.linkToken, userId, ada.email!, undefined),
      );
      expect(refused.code).toBe('CONFLICT');
      expect(fakes.links.rows.size).toBe(0);
    });

    it('needs the email the provider verified', async () => {
      const { oidc, complete, person } = setUp();
      const completion = await complete(person());
      if (completion.kind !== 'unlinked') throw new Error('expected unlinked');
      const refused = await appErrorOf(
        oidc.createAccount(completion.linkToken, randomUUID(), 'someone@example.com', undefined),
      );
      expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', field: 'linkToken' });
    });
  });

  describe('link', () => {
    it('links with recent authentication and the verified email, once, with a security notice', async () => {
      const { oidc, credentials, complete, person, changes } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const ada = person();
      const completion = await complete(ada);
      if (completion.kind !== 'unlinked') throw new Error('expected unlinked');
      const linked = await oidc.link(
        userId,
        sessionId,
        ada.email!.toUpperCase(),
        completion.linkToken,
      );
      expect(linked).toMatchObject({ provider: 'idp', email: ada.email });
      expect(changes()).toEqual(['oidc_linked']);
      const twice = await appErrorOf(
        oidc.link(userId, sessionId, ada.email!, completion.linkToken),
      );
      expect(twice.code).toBe('BAD_USER_INPUT');
      expect(await complete(ada)).toMatchObject({ kind: 'signed-in', userId });
    });

    it('refuses without recent authentication, leaving the link token usable', async () => {
      const { oidc, credentials, complete, person, clock } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const ada = person();
      const completion = await complete(ada);
      if (completion.kind !== 'unlinked') throw new Error('expected unlinked');
      clock.advance(301);
      const stale = await appErrorOf(
        oidc.link(userId, sessionId, ada.email!, completion.linkToken),
      );
      expect(stale).toMatchObject({ code: 'FORBIDDEN', reason: 'REAUTHENTICATION_REQUIRED' });
    });

    it("refuses another user's email (a link token lured into someone else's session)", async () => {
      const { oidc, credentials, complete, person, fakes } = setUp();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const completion = await complete(person());
      if (completion.kind !== 'unlinked') throw new Error('expected unlinked');
      const refused = await appErrorOf(
        oidc.link(userId, sessionId, 'victim@example.com', completion.linkToken),
      );
      expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', field: 'linkToken' });
      expect(fakes.links.rows.size).toBe(0);
    });
  });

  describe('unlink', () => {
    it('refuses the last way in, allows it with a password, with a security notice', async () => {
      const { oidc, oidcUser, credentials, changes } = setUp();
      const { userId, sessionId } = await oidcUser();
      const [linked] = await oidc.list(userId);
      const last = await appErrorOf(oidc.unlink(userId, sessionId, linked!.id));
      expect(last).toMatchObject({ code: 'CONFLICT', reason: 'LAST_SIGN_IN_METHOD' });
      await credentials.create(userId, PASSWORD, undefined);
      await oidc.unlink(userId, sessionId, linked!.id);
      expect(await oidc.list(userId)).toEqual([]);
      expect(changes()).toEqual(['oidc_unlinked']);
    });

    it('is NOT_FOUND for an id that is not mine, FORBIDDEN without recent authentication', async () => {
      const { oidc, oidcUser, clock } = setUp();
      const a = await oidcUser();
      const b = await oidcUser();
      const [bLink] = await oidc.list(b.userId);
      expect((await appErrorOf(oidc.unlink(a.userId, a.sessionId, bLink!.id))).code).toBe(
        'NOT_FOUND',
      );
      clock.advance(301);
      expect(await appErrorOf(oidc.unlink(b.userId, b.sessionId, bLink!.id))).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'REAUTHENTICATION_REQUIRED',
      });
    });
  });

  it("refuses removing a passkey that is a user's last way in", async () => {
    const { passkeys, fakes, oidcUser, oidc } = setUp();
    const { userId, sessionId } = await oidcUser();
    // As if the user had a passkey and unlinked the provider (the fakes allow arranging it directly).
    const row = await fakes.passkeys.create(undefined as never, {
      userId,
      credentialId: 'cred',
      publicKey: new Uint8Array([1]),
      counter: 0,
      transports: [],
      name: 'Laptop',
      aaguid: '0',
      backedUp: false,
    });
    const [linked] = await oidc.list(userId);
    await oidc.unlink(userId, sessionId, linked!.id);
    const refused = await appErrorOf(passkeys.remove(userId, sessionId, row!.id));
    expect(refused).toMatchObject({ code: 'CONFLICT', reason: 'LAST_SIGN_IN_METHOD' });
  });
});
