import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'otplib';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSmtpServer, type TestSmtpServer } from '@platform/testing';
import {
  createSoftwareAuthenticator,
  type SoftwareAuthenticator,
} from '@platform/webauthn-testing';
import { graphql, signIn, signUp, type GraphQLResponse, type SignedIn } from './graphql.client';
import { ADMIN, startPlatform, stopPlatform, type Platform } from './platform.harness';
import { expectSecurityNotice } from './security-notices';

const PASSWORD = 'correct horse battery';
/** Where the software authenticator's "browser" runs. */
const ORIGIN = 'http://localhost:3000';
/** Managing factors needs a sign-in or re-authentication this recent (seconds); short to test it. */
const REAUTH_WINDOW = 8;
const GUESSES_PER_CLIENT = 5;
/** Debian's chromium (`apt-get install chromium`); the browser test is skipped, saying so, without it. */
const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);

const BEGIN_REGISTRATION = 'mutation { beginPasskeyRegistration }';
const FINISH_REGISTRATION = `mutation ($response: String!, $name: String) {
  finishPasskeyRegistration(response: $response, name: $name) {
    id name createdAt lastUsedAt transports backedUp } }`;
const BEGIN_LOGIN = 'mutation { beginPasskeyLogin }';
const FINISH_LOGIN = `mutation ($response: String!) {
  finishPasskeyLogin(response: $response) { accessToken refreshToken deviceToken user { id email } } }`;
const MY_PASSKEYS = '{ myPasskeys { id name lastUsedAt } }';
const REMOVE = 'mutation ($id: ID!) { removePasskey(id: $id) }';
const REAUTH = 'mutation ($p: String) { reauthenticate(password: $p) { recentUntil } }';

interface FinishedLogin {
  finishPasskeyLogin: {
    accessToken: string;
    refreshToken: string;
    deviceToken: string | null;
    user: { id: string; email: string };
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The page the browser test loads: it runs both ceremonies with the browser's WebAuthn API. */
const PAGE = `<!doctype html><html><head><title>passkeys</title></head><body><script>
const gateway = new URLSearchParams(location.search).get('gateway');
async function gql(query, variables, token) {
  const response = await fetch(gateway + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}
window.registerPasskey = async (token) => {
  const begun = await gql(${JSON.stringify(BEGIN_REGISTRATION)}, {}, token);
  if (!begun.data) return begun;
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(begun.data.beginPasskeyRegistration));
  const credential = await navigator.credentials.create({ publicKey });
  return gql(${JSON.stringify(FINISH_REGISTRATION)}, { response: JSON.stringify(credential.toJSON()), name: 'Chromium' }, token);
};
window.signInWithPasskey = async () => {
  const begun = await gql(${JSON.stringify(BEGIN_LOGIN)}, {});
  if (!begun.data) return begun;
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(begun.data.beginPasskeyLogin));
  const credential = await navigator.credentials.get({ publicKey });
  return gql(${JSON.stringify(FINISH_LOGIN)}, { response: JSON.stringify(credential.toJSON()) });
};
</script></body></html>`;

describe('passkeys through the gateway', () => {
  let platform: Platform;
  let gateway: string;
  let smtp: TestSmtpServer;
  let page: Server;
  let pageOrigin: string;

  beforeAll(async () => {
    page = createServer((_, response) => {
      response.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    });
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://localhost:${(page.address() as AddressInfo).port}`;
    smtp = await startTestSmtpServer();
    platform = await startPlatform({
      'auth-service': {
        SMTP_URL: smtp.url,
        WEBAUTHN_RP_ID: 'localhost',
        WEBAUTHN_RP_NAME: 'Platform e2e',
        WEBAUTHN_ORIGINS: `${ORIGIN},${pageOrigin}`,
        REAUTH_WINDOW_SECONDS: String(REAUTH_WINDOW),
        PASSWORD_GUESSES_PER_CLIENT: String(GUESSES_PER_CLIENT),
      },
      'notification-service': { SMTP_URL: smtp.url },
    });
    gateway = platform.gateway;
  }, 120_000);

  afterAll(async () => {
    await stopPlatform(platform);
    await smtp?.close();
    await new Promise((resolve) => page?.close(resolve));
  });

  const as = <T>(who: { token: string } | undefined, query: string, variables = {}) =>
    graphql<T>(gateway, query, { variables, ...(who ? { token: who.token } : {}) });
  const errorOf = (response: GraphQLResponse<unknown>) => response.errors?.[0]?.extensions;

  /** A new account with a passkey on a software authenticator. */
  async function withPasskey(email: string) {
    const account = await signUp(gateway, email, PASSWORD);
    const authenticator = createSoftwareAuthenticator(ORIGIN);
    const begun = await as<{ beginPasskeyRegistration: string }>(account, BEGIN_REGISTRATION);
    const finished = await as<{ finishPasskeyRegistration: { id: string; name: string } }>(
      account,
      FINISH_REGISTRATION,
      { response: authenticator.create(begun.data!.beginPasskeyRegistration), name: 'Laptop' },
    );
    if (!finished.data) throw new Error(JSON.stringify(finished.errors));
    return { account, email, authenticator, passkey: finished.data.finishPasskeyRegistration };
  }

  async function passkeyLogin(
    authenticator: SoftwareAuthenticator,
    overrides: Parameters<SoftwareAuthenticator['get']>[1] = {},
  ) {
    const begun = await as<{ beginPasskeyLogin: string }>(undefined, BEGIN_LOGIN);
    const options = begun.data!.beginPasskeyLogin;
    return as<FinishedLogin>(undefined, FINISH_LOGIN, {
      response: authenticator.get(options, overrides),
    });
  }

  /** The user's in-app notice with this title, and the email that carried it. */
  const noticeDelivered = (who: SignedIn, email: string, title: string) =>
    expectSecurityNotice(gateway, smtp, who, email, title);

  it('registers a passkey: creation options for this relying party, the passkey listed, mfaEnrolled, a notice', async () => {
    const account = await signUp(gateway, 'pk-register@example.com', PASSWORD);
    const begun = await as<{ beginPasskeyRegistration: string }>(account, BEGIN_REGISTRATION);
    const options = JSON.parse(begun.data!.beginPasskeyRegistration) as Record<string, unknown>;
    expect(options).toMatchObject({
      rp: { id: 'localhost', name: 'Platform e2e' },
      user: { name: 'pk-register@example.com' },
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
    const authenticator = createSoftwareAuthenticator(ORIGIN);
    const finished = await as<{ finishPasskeyRegistration: Record<string, unknown> }>(
      account,
      FINISH_REGISTRATION,
      { response: authenticator.create(begun.data!.beginPasskeyRegistration), name: 'Laptop' },
    );
    expect(finished.data?.finishPasskeyRegistration).toMatchObject({
      name: 'Laptop',
      lastUsedAt: null,
      transports: ['internal'],
      backedUp: false,
    });
    const listed = await as<{ myPasskeys: { id: string; name: string }[] }>(account, MY_PASSKEYS);
    expect(listed.data?.myPasskeys.map((passkey) => passkey.name)).toEqual(['Laptop']);
    const me = await as<{ me: { mfaEnrolled: boolean } }>(account, '{ me { mfaEnrolled } }');
    expect(me.data?.me.mfaEnrolled).toBe(true);
    await noticeDelivered(account, 'pk-register@example.com', 'A passkey was added');

    // Not signed in: no ceremony.
    const anonymous = await as(undefined, BEGIN_REGISTRATION);
    expect(errorOf(anonymous)?.['code']).toBe('UNAUTHENTICATED');
  });

  it('signs in with a passkey alone (no email), with the platform tokens, even with TOTP on; or answers the challenge of a password sign-in', async () => {
    const { account, authenticator } = await withPasskey('pk-login@example.com');
    // TOTP on as well: a passkey sign-in is two factors in one, no challenge follows.
    const totp = await as<{ beginTotpEnrollment: { secret: string } }>(
      account,
      'mutation { beginTotpEnrollment { secret } }',
    );
    const confirmed = await as(
      account,
      'mutation ($c: String!) { confirmTotpEnrollment(code: $c) { codes } }',
      {
        c: await generate({ secret: totp.data!.beginTotpEnrollment.secret }),
      },
    );
    expect(confirmed.errors).toBeUndefined();

    const signedIn = await passkeyLogin(authenticator);
    const payload = signedIn.data?.finishPasskeyLogin;
    expect(payload?.user).toEqual({ id: account.id, email: 'pk-login@example.com' });
    expect(payload?.deviceToken).toMatch(/^[\w-]{43}$/);
    const me = await as<{ me: { id: string } }>({ token: payload!.accessToken }, '{ me { id } }');
    expect(me.data?.me.id).toBe(account.id);
    const refreshed = await as<{ refreshSession: { accessToken: string } }>(
      undefined,
      'mutation ($t: String!) { refreshSession(refreshToken: $t) { accessToken } }',
      { t: payload!.refreshToken },
    );
    expect(refreshed.data?.refreshSession.accessToken).toBeTruthy();
    const listed = await as<{ myPasskeys: { lastUsedAt: string | null }[] }>(account, MY_PASSKEYS);
    expect(listed.data?.myPasskeys[0]?.lastUsedAt).not.toBeNull();

    // A password sign-in of this account is challenged, and the passkey can answer it.
    const challenged = await as<{
      signIn: { __typename: string; challenge: string; methods: string[] };
    }>(
      undefined,
      `mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) {
        __typename ... on MfaChallenge { challenge methods } } }`,
      { e: 'pk-login@example.com', p: PASSWORD },
    );
    const challenge = challenged.data!.signIn;
    expect(challenge.__typename).toBe('MfaChallenge');
    expect(challenge.methods).toEqual(['TOTP', 'RECOVERY_CODE', 'PASSKEY']);
    const begun = await as<{ beginPasskeyLogin: string }>(
      undefined,
      'mutation ($c: String) { beginPasskeyLogin(challenge: $c) }',
      { c: challenge.challenge },
    );
    const options = JSON.parse(begun.data!.beginPasskeyLogin) as {
      allowCredentials: { id: string }[];
    };
    expect(options.allowCredentials.map((credential) => credential.id)).toEqual([
      authenticator.credentials[0]?.id,
    ]);
    const completed = await as<FinishedLogin>(undefined, FINISH_LOGIN, {
      response: authenticator.get(begun.data!.beginPasskeyLogin),
    });
    expect(completed.data?.finishPasskeyLogin.user.id).toBe(account.id);
    const reused = await as(
      undefined,
      'mutation ($c: String!, $k: String!) { verifyMfa(challenge: $c, code: $k) { accessToken } }',
      { c: challenge.challenge, k: '000000' },
    );
    expect(errorOf(reused)?.['code']).toBe('UNAUTHENTICATED');
  });

  it('asks a passkey-only account for its passkey after a right password: the password alone gets no tokens', async () => {
    const { account, email, authenticator } = await withPasskey('pk-only@example.com');
    const challenged = await as<{
      signIn: { __typename: string; challenge: string; methods: string[] };
    }>(
      undefined,
      `mutation ($e: String!, $p: String!) { signIn(email: $e, password: $p) {
        __typename ... on MfaChallenge { challenge methods } } }`,
      { e: email, p: PASSWORD },
    );
    expect(challenged.data?.signIn).toMatchObject({
      __typename: 'MfaChallenge',
      methods: ['PASSKEY'],
    });
    const login = await as(
      undefined,
      'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }',
      { e: email, p: PASSWORD },
    );
    expect(errorOf(login)).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'MFA_REQUIRED' });
    const begun = await as<{ beginPasskeyLogin: string }>(
      undefined,
      'mutation ($c: String) { beginPasskeyLogin(challenge: $c) }',
      { c: challenged.data!.signIn.challenge },
    );
    const completed = await as<FinishedLogin>(undefined, FINISH_LOGIN, {
      response: authenticator.get(begun.data!.beginPasskeyLogin),
    });
    expect(completed.data?.finishPasskeyLogin.user.id).toBe(account.id);
  });

  it('refuses an assertion made for another origin, a replayed challenge and a cloned authenticator', async () => {
    const { authenticator } = await withPasskey('pk-refusals@example.com');

    const foreign = await passkeyLogin(authenticator, { origin: 'https://evil.example' });
    expect(errorOf(foreign)?.['code']).toBe('UNAUTHENTICATED');
    expect(foreign.data).toBeNull();

    const begun = await as<{ beginPasskeyLogin: string }>(undefined, BEGIN_LOGIN);
    const options = begun.data!.beginPasskeyLogin;
    const first = await as<FinishedLogin>(undefined, FINISH_LOGIN, {
      response: authenticator.get(options),
    });
    expect(first.data?.finishPasskeyLogin.accessToken).toBeTruthy();
    const replayed = await as<FinishedLogin>(undefined, FINISH_LOGIN, {
      response: authenticator.get(options),
    });
    expect(errorOf(replayed)?.['code']).toBe('UNAUTHENTICATED');

    // A copy of the key taken now, used after the original has signed in again: its counter
    // is behind what the server has seen.
    const clone = { ...authenticator.credentials[0]! };
    expect((await passkeyLogin(authenticator)).data?.finishPasskeyLogin.accessToken).toBeTruthy();
    const cloned = await passkeyLogin(authenticator, { credential: clone });
    expect(errorOf(cloned)?.['code']).toBe('UNAUTHENTICATED');
  });

  it('counts failed assertions against the sign-in limits, shared with passwords', async () => {
    const { authenticator, email } = await withPasskey('pk-limits@example.com');
    for (let i = 0; i < GUESSES_PER_CLIENT; i += 1) {
      const failed = await passkeyLogin(authenticator, { origin: 'https://evil.example' });
      expect(errorOf(failed)?.['code']).toBe('UNAUTHENTICATED');
    }
    const limited = await passkeyLogin(authenticator);
    expect(errorOf(limited)?.['code']).toBe('RATE_LIMITED');
    expect(errorOf(limited)?.['retryAfter']).toBeGreaterThan(0);
    const password = await as(
      undefined,
      'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }',
      { e: email, p: PASSWORD },
    );
    expect(errorOf(password)?.['code']).toBe('RATE_LIMITED');
  });

  it("opens nothing for a disabled account's passkey", async () => {
    const { account, authenticator } = await withPasskey('pk-disabled@example.com');
    const admin = await signIn(gateway, ADMIN.email, ADMIN.password);
    const disabled = await as(
      admin,
      'mutation ($id: ID!) { setUserStatus(id: $id, status: DISABLED) { id } }',
      { id: account.id },
    );
    expect(disabled.errors).toBeUndefined();
    const refused = await passkeyLogin(authenticator);
    expect(errorOf(refused)?.['code']).toBe('UNAUTHENTICATED');
    expect(refused.data).toBeNull();
  });

  it('refuses oversized or malformed responses at the edge', async () => {
    const tooLarge = await as(undefined, FINISH_LOGIN, { response: 'x'.repeat(70 * 1024) });
    expect(errorOf(tooLarge)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'response' });
    const junk = await as(undefined, FINISH_LOGIN, { response: '{"id":"nope"}' });
    expect(errorOf(junk)?.['code']).toBe('UNAUTHENTICATED');
  });

  it('removes a passkey only after re-authentication (here with the passkey), with a notice; it no longer signs in', async () => {
    const { account, email, authenticator, passkey } = await withPasskey('pk-remove@example.com');
    await pause((REAUTH_WINDOW + 1) * 1000);
    const refused = await as(account, REMOVE, { id: passkey.id });
    expect(errorOf(refused)).toMatchObject({
      code: 'FORBIDDEN',
      reason: 'REAUTHENTICATION_REQUIRED',
    });
    const again = await as(account, BEGIN_REGISTRATION);
    expect(errorOf(again)).toMatchObject({
      code: 'FORBIDDEN',
      reason: 'REAUTHENTICATION_REQUIRED',
    });

    // With a passkey on, the password alone does not re-authenticate; the passkey itself does.
    const passwordAlone = await as(account, REAUTH, { p: PASSWORD });
    expect(errorOf(passwordAlone)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
    const begun = await as<{ beginPasskeyReauthentication: string }>(
      account,
      'mutation { beginPasskeyReauthentication }',
    );
    const proved = await as<{ reauthenticateWithPasskey: { recentUntil: string } }>(
      account,
      'mutation ($r: String!) { reauthenticateWithPasskey(response: $r) { recentUntil } }',
      { r: authenticator.get(begun.data!.beginPasskeyReauthentication) },
    );
    expect(proved.errors).toBeUndefined();
    expect(new Date(proved.data!.reauthenticateWithPasskey.recentUntil).getTime()).toBeGreaterThan(
      Date.now(),
    );
    const removed = await as<{ removePasskey: boolean }>(account, REMOVE, { id: passkey.id });
    expect(removed.data?.removePasskey).toBe(true);
    const listed = await as<{ myPasskeys: unknown[] }>(account, MY_PASSKEYS);
    expect(listed.data?.myPasskeys).toEqual([]);
    await noticeDelivered(account, email, 'A passkey was removed');
    expect(errorOf(await passkeyLogin(authenticator))?.['code']).toBe('UNAUTHENTICATED');
    const gone = await as(account, REMOVE, { id: passkey.id });
    expect(errorOf(gone)?.['code']).toBe('NOT_FOUND');
  });

  it.skipIf(!HAS_CHROMIUM)(
    `registers and signs in from headless Chromium with a virtual authenticator (DevTools WebAuthn)${HAS_CHROMIUM ? '' : ` — SKIPPED: no ${CHROMIUM}`}`,
    async () => {
      const account = await signUp(gateway, 'pk-chromium@example.com', PASSWORD);
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const context = await browser.newContext();
        const tab = await context.newPage();
        const devtools = await context.newCDPSession(tab);
        await devtools.send('WebAuthn.enable');
        const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
          options: {
            protocol: 'ctap2',
            transport: 'internal',
            hasResidentKey: true,
            hasUserVerification: true,
            isUserVerified: true,
            automaticPresenceSimulation: true,
          },
        });
        await tab.goto(`${pageOrigin}/?gateway=${encodeURIComponent(gateway)}`);

        const registered = (await tab.evaluate(
          (token) =>
            (
              globalThis as unknown as { registerPasskey(t: string): Promise<unknown> }
            ).registerPasskey(token),
          account.token,
        )) as GraphQLResponse<{ finishPasskeyRegistration: { name: string } }>;
        expect(registered.errors).toBeUndefined();
        expect(registered.data?.finishPasskeyRegistration.name).toBe('Chromium');
        const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
        expect(credentials).toHaveLength(1);
        expect(credentials[0]?.isResidentCredential).toBe(true);

        const signedIn = (await tab.evaluate(() =>
          (globalThis as unknown as { signInWithPasskey(): Promise<unknown> }).signInWithPasskey(),
        )) as GraphQLResponse<FinishedLogin>;
        expect(signedIn.errors).toBeUndefined();
        expect(signedIn.data?.finishPasskeyLogin.user.id).toBe(account.id);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
