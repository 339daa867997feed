import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { TestOidcProvider } from '@platform/oidc-testing';
import { startTestSmtpServer, type TestSmtpServer } from '@platform/testing';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, signIn, signUp, type GraphQLResponse } from './graphql.client';
import {
  createOidcDriver,
  OIDC_REDIRECT_URI,
  startOidcProviders,
  type OidcSignInResult,
} from './oidc.flow';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { expectSecurityNotice } from './security-notices';

const PASSWORD = 'correct horse battery';
/** Managing sign-in methods needs a sign-in or re-authentication this recent (seconds); short to test it. */
const REAUTH_WINDOW = 8;
const GUESSES_PER_CLIENT = 5;

const LINK = `mutation ($t: String!) { linkOidcAccount(linkToken: $t) { id provider email createdAt } }`;
const UNLINK = 'mutation ($id: ID!) { unlinkAccount(id: $id) }';
const LINKED = '{ myLinkedAccounts { id provider email } }';
const REAUTH = 'mutation ($p: String) { reauthenticate(password: $p) { recentUntil } }';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port nothing listens on (taken, then let go). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('sign-in with an external OpenID Connect provider, through the gateway', () => {
  let platform: Platform;
  let gateway: string;
  let smtp: TestSmtpServer;
  let idp: TestOidcProvider;
  let oidc: ReturnType<typeof createOidcDriver>;

  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    const providers = await startOidcProviders();
    idp = providers.idp;
    platform = await startPlatform({
      'auth-service': {
        SMTP_URL: smtp.url,
        MFA_ENCRYPTION_KEYS: `e2e:${randomBytes(32).toString('base64')}`,
        REAUTH_WINDOW_SECONDS: String(REAUTH_WINDOW),
        PASSWORD_GUESSES_PER_CLIENT: String(GUESSES_PER_CLIENT),
        ...providers.env,
        // A third provider whose issuer cannot be reached: the service must start and serve anyway.
        OIDC_PROVIDERS: `${providers.env['OIDC_PROVIDERS']},down`,
        OIDC_DOWN_ISSUER: `http://127.0.0.1:${await closedPort()}`,
        OIDC_DOWN_CLIENT_ID: 'platform-down',
      },
      'notification-service': { SMTP_URL: smtp.url },
    });
    gateway = platform.gateway;
    oidc = createOidcDriver(gateway, idp);
  }, 120_000);

  afterAll(async () => {
    await stopPlatform(platform);
    await idp?.close();
    await smtp?.close();
  });

  const as = <T>(who: { token: string } | undefined, query: string, variables = {}) =>
    graphql<T>(gateway, query, { variables, ...(who ? { token: who.token } : {}) });
  const errorOf = (response: GraphQLResponse<unknown>) => response.errors?.[0]?.extensions;
  const resultOf = (response: GraphQLResponse<{ completeOidcLogin: OidcSignInResult }>) => {
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.completeOidcLogin;
  };
  /** Signs in at the provider and expects the platform's tokens. */
  async function signedInAs(sub: string) {
    const result = resultOf(await oidc.signInAs(sub));
    if (result.__typename !== 'AuthPayload') throw new Error(`got ${result.__typename}`);
    return { token: result.accessToken, id: result.user.id, result };
  }
  /** Whether any account has this email (the admin looks). */
  async function accountExists(email: string) {
    const found = await as<{ users: { edges: { node: { email: string } }[] } }>(
      platform.admin,
      '{ users(first: 100) { edges { node { email } } } }',
    );
    return found.data!.users.edges.some((edge) => edge.node.email === email);
  }

  it('lists the configured providers; refuses a redirect URI off the allow-list and an unknown provider', async () => {
    const listed = await as<{ oidcProviders: { name: string }[] }>(
      undefined,
      '{ oidcProviders { name } }',
    );
    expect(listed.data?.oidcProviders).toEqual([
      { name: 'idp' },
      { name: 'spare' },
      { name: 'down' },
    ]);

    const begun = await oidc.begin('idp');
    const url = new URL(begun.data!.oidcAuthorizationUrl.url);
    expect(url.origin).toBe(idp.issuer);
    expect(url.searchParams.get('redirect_uri')).toBe(OIDC_REDIRECT_URI);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('state')).toBe(begun.data!.oidcAuthorizationUrl.state);
    expect(url.searchParams.get('nonce')).toBeTruthy();

    const elsewhere = await oidc.begin('idp', 'https://attacker.example/callback');
    expect(errorOf(elsewhere)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'redirectUri' });
    const unknown = await oidc.begin('nope');
    expect(errorOf(unknown)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'provider' });
  });

  it('signs a verified new identity up and in with the platform tokens, and the same (provider, sub) in again later', async () => {
    const ada = oidc.person({ name: 'Ada Lovelace' });
    const first = await signedInAs(ada.sub);
    expect(first.result.user).toMatchObject({ email: ada.email, displayName: 'Ada Lovelace' });
    expect(first.result.refreshToken).toBeTruthy();
    const me = await as<{ me: { id: string; email: string } }>(first, '{ me { id email } }');
    expect(me.data?.me).toEqual({ id: first.id, email: ada.email });
    const linked = await as<{ myLinkedAccounts: { provider: string; email: string }[] }>(
      first,
      LINKED,
    );
    expect(linked.data?.myLinkedAccounts).toEqual([
      expect.objectContaining({ provider: 'idp', email: ada.email }),
    ]);

    const again = await signedInAs(ada.sub);
    expect(again.id).toBe(first.id);
  });

  it('never links silently: an existing email gets OidcLinkRequired, and only that account, signed in and recently, links it', async () => {
    const email = `owner-${Date.now()}@example.com`;
    const owner = await signUp(gateway, email, PASSWORD);
    // An attacker's provider account claiming the owner's (verified) email signs nobody in.
    const claimant = oidc.person({ email });
    const pending = resultOf(await oidc.signInAs(claimant.sub));
    expect(pending).toMatchObject({ __typename: 'OidcLinkRequired', provider: 'idp', email });
    if (pending.__typename !== 'OidcLinkRequired') throw new Error('expected OidcLinkRequired');
    const before = await as<{ myLinkedAccounts: unknown[] }>(owner, LINKED);
    expect(before.data?.myLinkedAccounts).toEqual([]);

    // Another user cannot take the link token: it is bound to the verified email.
    const stranger = await signUp(gateway, `stranger-${Date.now()}@example.com`, PASSWORD);
    const stolen = await as(stranger, LINK, { t: pending.linkToken });
    expect(errorOf(stolen)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'linkToken' });

    // The owner, signed in a while ago, must prove it is them first.
    const fresh = await signIn(gateway, email, PASSWORD);
    const retry = resultOf(await oidc.signInAs(claimant.sub));
    if (retry.__typename !== 'OidcLinkRequired') throw new Error('expected OidcLinkRequired');
    await pause((REAUTH_WINDOW + 1) * 1000);
    const stale = await as(fresh, LINK, { t: retry.linkToken });
    expect(errorOf(stale)).toMatchObject({
      code: 'FORBIDDEN',
      reason: 'REAUTHENTICATION_REQUIRED',
    });
    expect(errorOf(await as(fresh, REAUTH, { p: PASSWORD }))).toBeUndefined();
    // Refused before the token was looked at: it still links, once.
    const linked = await as<{ linkOidcAccount: { provider: string; email: string } }>(fresh, LINK, {
      t: retry.linkToken,
    });
    expect(linked.data?.linkOidcAccount).toMatchObject({ provider: 'idp', email });
    await expectSecurityNotice(gateway, smtp, fresh, email, 'An external account was linked');
    const twice = await as(fresh, LINK, { t: retry.linkToken });
    expect(errorOf(twice)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'linkToken' });

    // From now on the provider signs the owner in.
    const viaProvider = await signedInAs(claimant.sub);
    expect(viaProvider.id).toBe(owner.id);
  }, 60_000);

  it('answers a linked user with a second factor with the same MfaChallenge a password earns', async () => {
    const grace = oidc.person();
    const account = await signedInAs(grace.sub);
    const begun = await as<{ beginTotpEnrollment: { secret: string } }>(
      account,
      'mutation { beginTotpEnrollment { secret } }',
    );
    const secret = begun.data!.beginTotpEnrollment.secret;
    const now = Math.floor(Date.now() / 30_000);
    const confirmed = await as(
      account,
      'mutation ($c: String!) { confirmTotpEnrollment(code: $c) { codes } }',
      { c: await generate({ secret, epoch: now * 30 }) },
    );
    expect(errorOf(confirmed)).toBeUndefined();

    const challenged = resultOf(await oidc.signInAs(grace.sub));
    expect(challenged).toMatchObject({
      __typename: 'MfaChallenge',
      methods: ['TOTP', 'RECOVERY_CODE'],
    });
    if (challenged.__typename !== 'MfaChallenge') throw new Error('expected a challenge');
    const verified = await as<{ verifyMfa: { user: { id: string } } }>(
      undefined,
      'mutation ($ch: String!, $c: String!) { verifyMfa(challenge: $ch, code: $c) { accessToken user { id } } }',
      { ch: challenged.challenge, c: await generate({ secret, epoch: (now + 1) * 30 }) },
    );
    expect(verified.data?.verifyMfa.user.id).toBe(account.id);
  });

  it('unlinks: refused when it is the last way in, allowed once another remains, with a notice; needs recent authentication', async () => {
    const lin = oidc.person();
    const account = await signedInAs(lin.sub);
    const [only] = (await as<{ myLinkedAccounts: { id: string }[] }>(account, LINKED)).data!
      .myLinkedAccounts;
    const last = await as(account, UNLINK, { id: only!.id });
    expect(errorOf(last)).toMatchObject({ code: 'CONFLICT', reason: 'LAST_SIGN_IN_METHOD' });
    const notMine = await as(account, UNLINK, { id: '00000000-0000-4000-8000-000000000000' });
    expect(errorOf(notMine)).toMatchObject({ code: 'NOT_FOUND' });

    // A second provider account with the same verified email: the user links it, then may drop one.
    const second = resultOf(await oidc.signInAs(oidc.person({ email: lin.email }).sub));
    if (second.__typename !== 'OidcLinkRequired') throw new Error('expected OidcLinkRequired');
    expect(errorOf(await as(account, LINK, { t: second.linkToken }))).toBeUndefined();
    const both = (await as<{ myLinkedAccounts: { id: string }[] }>(account, LINKED)).data!
      .myLinkedAccounts;
    expect(both).toHaveLength(2);
    expect(errorOf(await as(account, UNLINK, { id: only!.id }))).toBeUndefined();
    await expectSecurityNotice(
      gateway,
      smtp,
      account,
      lin.email!,
      'An external account was unlinked',
    );
    // The unlinked provider account no longer signs this user in: it is a stranger again.
    const unlinkedAgain = resultOf(await oidc.signInAs(lin.sub));
    expect(unlinkedAgain.__typename).toBe('OidcLinkRequired');

    // Past the window, unlinking needs re-authentication (this user has no password: signing in again).
    await pause((REAUTH_WINDOW + 1) * 1000);
    const [remaining] = (await as<{ myLinkedAccounts: { id: string }[] }>(account, LINKED)).data!
      .myLinkedAccounts;
    const stale = await as(account, UNLINK, { id: remaining!.id });
    expect(errorOf(stale)).toMatchObject({
      code: 'FORBIDDEN',
      reason: 'REAUTHENTICATION_REQUIRED',
    });
  }, 60_000);

  it('refuses a tampered ID token, a wrong nonce, a replayed state and an unverified email: UNAUTHENTICATED, never 5xx, nothing created', async () => {
    const mallory = oidc.person();
    idp.tamperNextIdToken();
    const tampered = await oidc.signInAs(mallory.sub);
    expect(errorOf(tampered)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(tampered.errors?.[0]?.message).toBe('Sign-in with idp failed; begin again');

    const wrongNonce = await oidc.signInAs(mallory.sub, {
      tamperUrl: (url) => url.searchParams.set('nonce', 'an-injected-response'),
    });
    expect(errorOf(wrongNonce)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await accountExists(mallory.email!)).toBe(false);

    const callback = await oidc.authorize(mallory.sub);
    // Login CSRF: the attacker's own callback, completed in another browser (without the
    // binding only the attacker's browser holds, or with that browser's binding of another
    // flow), signs nobody in; and the state is spent by the try.
    const elsewhere = (await oidc.begin('idp')).data!.oidcAuthorizationUrl.binding;
    const csrf = await oidc.complete('idp', callback.code, callback.state, elsewhere);
    expect(errorOf(csrf)?.['code']).toBe('UNAUTHENTICATED');
    const again = await oidc.authorize(mallory.sub);
    const first = await oidc.complete('idp', again.code, again.state, again.binding);
    expect(resultOf(first).__typename).toBe('AuthPayload');
    const replayed = await oidc.complete('idp', again.code, again.state, again.binding);
    expect(errorOf(replayed)).toMatchObject({ code: 'UNAUTHENTICATED' });

    for (const emailVerified of [false, undefined]) {
      const unverified = oidc.person({ emailVerified });
      const refused = await oidc.signInAs(unverified.sub);
      expect(errorOf(refused)).toMatchObject({
        code: 'UNAUTHENTICATED',
        reason: 'EMAIL_NOT_VERIFIED',
      });
      expect(await accountExists(unverified.email!)).toBe(false);
    }
    // An unverified email matching an existing account links nothing either.
    const victim = `victim-${Date.now()}@example.com`;
    await signUp(gateway, victim, PASSWORD);
    const claim = await oidc.signInAs(oidc.person({ email: victim, emailVerified: false }).sub);
    expect(errorOf(claim)).toMatchObject({ reason: 'EMAIL_NOT_VERIFIED' });
  });

  it('refuses a disabled account like password sign-in', async () => {
    const dora = oidc.person();
    const account = await signedInAs(dora.sub);
    const disabled = await as(
      platform.admin,
      'mutation ($id: ID!) { setUserStatus(id: $id, status: DISABLED) { id } }',
      { id: account.id },
    );
    expect(errorOf(disabled)).toBeUndefined();
    const refused = await oidc.signInAs(dora.sub);
    expect(errorOf(refused)).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('answers SERVICE_UNAVAILABLE for a provider that cannot be reached, while the others and the service go on', async () => {
    const down = await oidc.begin('down');
    expect(errorOf(down)).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(errorOf(down)?.['retryAfter']).toBeGreaterThan(0);
    const completion = await oidc.complete('down', 'a-code', 'a-state', 'a-binding');
    expect(errorOf(completion)).toMatchObject({ code: 'UNAUTHENTICATED' });
    await signedInAs(oidc.person().sub);
  });

  it('limits failed completions per address and provider: RATE_LIMITED with retryAfter past the limit', async () => {
    for (let i = 0; i < GUESSES_PER_CLIENT; i++) {
      const failed = await oidc.complete('spare', 'not-a-code', `not-a-state-${i}`, 'b');
      expect(errorOf(failed)).toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    const limited = await oidc.complete('spare', 'not-a-code', 'not-a-state-x', 'b');
    expect(errorOf(limited)).toMatchObject({ code: 'RATE_LIMITED' });
    expect(errorOf(limited)?.['retryAfter']).toBeGreaterThan(0);
    // Even a right callback waits: nothing is redeemed over the limit.
    const person = oidc.person();
    const held = await oidc.signInAs(person.sub, { provider: 'spare' });
    expect(errorOf(held)).toMatchObject({ code: 'RATE_LIMITED' });
  });
});
