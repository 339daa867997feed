import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSmtpServer, type TestSmtpServer } from '@platform/testing';
import { graphql, signUp, type GraphQLResponse, type SignedIn } from './graphql.client';
import {
  BEGIN_TOTP as BEGIN,
  CONFIRM_TOTP as CONFIRM,
  createAuthenticator,
  enrolTotp,
  mfaAuthEnv,
} from './mfa.helpers';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { expectSecurityNotice } from './security-notices';

const PASSWORD = 'correct horse battery';
/** Managing factors needs a sign-in or re-authentication this recent (seconds); short to test it. */
const REAUTH_WINDOW = 8;
const GUESSES_PER_CLIENT = 5;

const SIGN_IN = `mutation ($email: String!, $password: String!) {
  signIn(email: $email, password: $password) {
    __typename
    ... on AuthPayload { accessToken deviceToken user { id } }
    ... on MfaChallenge { challenge expiresAt methods }
  } }`;
const VERIFY = `mutation ($challenge: String!, $code: String!) {
  verifyMfa(challenge: $challenge, code: $code) { accessToken refreshToken deviceToken user { id email } } }`;
const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken } }`;

type SignInResult =
  | { __typename: 'AuthPayload'; accessToken: string; deviceToken: string; user: { id: string } }
  | { __typename: 'MfaChallenge'; challenge: string; expiresAt: string; methods: string[] };

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('multi-factor sign-in through the gateway', () => {
  let platform: Platform;
  let gateway: string;
  let smtp: TestSmtpServer;

  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    platform = await startPlatform({
      'auth-service': {
        SMTP_URL: smtp.url,
        ...mfaAuthEnv(),
        REAUTH_WINDOW_SECONDS: String(REAUTH_WINDOW),
        PASSWORD_GUESSES_PER_CLIENT: String(GUESSES_PER_CLIENT),
      },
      'notification-service': { SMTP_URL: smtp.url },
    });
    gateway = platform.gateway;
    // Enrolled now, so that its sign-in is past the re-authentication window by its test (the
    // tests between take longer than the window): that test waits only for what is left.
    staleAccount = enrolled('margaret@example.com').then((account) => ({
      ...account,
      staleFrom: Date.now() + (REAUTH_WINDOW + 1) * 1000,
    }));
    // Awaited by its test, which fails with the error; not an unhandled rejection meanwhile.
    staleAccount.catch(() => undefined);
  }, 120_000);

  afterAll(async () => {
    await stopPlatform(platform);
    await smtp?.close();
  });

  const as = <T>(who: { token: string } | undefined, query: string, variables = {}) =>
    graphql<T>(gateway, query, { variables, ...(who ? { token: who.token } : {}) });
  const errorOf = (response: GraphQLResponse<unknown>) => response.errors?.[0]?.extensions;

  /** A new account with TOTP on: its app and its recovery codes. */
  async function enrolled(email: string) {
    const account = await signUp(gateway, email, PASSWORD);
    return { account, email, ...(await enrolTotp(gateway, account)) };
  }
  /** An account enrolled as the file started; its sign-in is no longer recent from `staleFrom`. */
  let staleAccount: Promise<Awaited<ReturnType<typeof enrolled>> & { staleFrom: number }>;

  async function challengeFor(email: string) {
    const response = await as<{ signIn: SignInResult }>(undefined, SIGN_IN, {
      email,
      password: PASSWORD,
    });
    const result = response.data?.signIn;
    if (result?.__typename !== 'MfaChallenge') throw new Error(JSON.stringify(response));
    return result.challenge;
  }

  const verify = (challenge: string, code: string) =>
    as<{
      verifyMfa: { accessToken: string; refreshToken: string; user: { id: string; email: string } };
    }>(undefined, VERIFY, { challenge, code });

  /** The user's in-app notice with this title, and the email that carried it. */
  const noticeDelivered = (who: SignedIn, email: string, title: string) =>
    expectSecurityNotice(gateway, smtp, who, email, title);

  it('turns TOTP on: a secret and otpauth URI, then 10 recovery codes for a right first code, and a notice', async () => {
    const account = await signUp(gateway, 'ada@example.com', PASSWORD);
    const begun = await as<{ beginTotpEnrollment: { secret: string; otpauthUri: string } }>(
      account,
      BEGIN,
    );
    const { secret, otpauthUri } = begun.data!.beginTotpEnrollment;
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\/[^?]+ada%40example\.com\?/);
    expect(otpauthUri).toContain(`secret=${secret}`);

    const wrong = await as(account, CONFIRM, { code: '000000' });
    expect(errorOf(wrong)).toEqual({ code: 'BAD_USER_INPUT', field: 'code' });
    const confirmed = await as<{ confirmTotpEnrollment: { codes: string[] } }>(account, CONFIRM, {
      code: await createAuthenticator(secret).code(),
    });
    const codes = confirmed.data!.confirmTotpEnrollment.codes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);

    const mine = await as<{ myMfa: unknown; me: { mfaEnrolled: boolean } }>(
      account,
      '{ myMfa { totpEnabled recoveryCodesLeft } me { mfaEnrolled } }',
    );
    expect(mine.data).toEqual({
      myMfa: { totpEnabled: true, recoveryCodesLeft: 10 },
      me: { mfaEnrolled: true },
    });
    const again = await as(account, BEGIN);
    expect(errorOf(again)?.['code']).toBe('CONFLICT');
    await noticeDelivered(account, 'ada@example.com', 'Two-step sign-in was turned on');
  });

  it('signs in with a challenge and a TOTP code; refuses a wrong code, a replayed code and a used challenge', async () => {
    const { email, app, codes } = await enrolled('grace@example.com');

    // login (whose payload always holds tokens) answers the challenge in its refusal.
    const login = await as(undefined, LOGIN, { email, password: PASSWORD });
    expect(login.data).toBeNull();
    expect(errorOf(login)).toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'MFA_REQUIRED',
      mfaChallenge: { methods: ['TOTP', 'RECOVERY_CODE'] },
    });
    const fromLogin = (errorOf(login)?.['mfaChallenge'] as { challenge: string }).challenge;
    const viaLogin = await verify(fromLogin, codes[0]!);
    expect(viaLogin.data?.verifyMfa.user.email).toBe(email);
    // A wrong password is refused alike with and without a factor, and earns no challenge.
    const wrongLogin = await as(undefined, LOGIN, { email, password: 'not my password' });
    expect(errorOf(wrongLogin)).toEqual({ code: 'UNAUTHENTICATED' });

    const signIn = await as<{ signIn: SignInResult }>(undefined, SIGN_IN, {
      email,
      password: PASSWORD,
    });
    const challenge = signIn.data!.signIn;
    expect(challenge).toMatchObject({
      __typename: 'MfaChallenge',
      methods: ['TOTP', 'RECOVERY_CODE'],
    });
    if (challenge.__typename !== 'MfaChallenge') throw new Error('no challenge');
    expect(new Date(challenge.expiresAt).getTime()).toBeGreaterThan(Date.now());

    const wrongPassword = await as(undefined, SIGN_IN, { email, password: 'not my password' });
    expect(errorOf(wrongPassword)?.['code']).toBe('UNAUTHENTICATED');

    const wrong = await verify(challenge.challenge, '123456');
    expect(errorOf(wrong)).toEqual({ code: 'UNAUTHENTICATED' });

    const code = await app.code();
    const done = await verify(challenge.challenge, code);
    expect(done.data?.verifyMfa.user.email).toBe(email);
    const me = await as<{ me: { email: string } }>(
      { token: done.data!.verifyMfa.accessToken },
      '{ me { email } }',
    );
    expect(me.data?.me.email).toBe(email);

    // The challenge is used up, and the code too: a replay on a new challenge is refused.
    // (The challenge is looked at first: no code is checked, so none is spent here.)
    const used = await verify(challenge.challenge, '000000');
    expect(errorOf(used)).toEqual({ code: 'UNAUTHENTICATED' });
    expect(used.errors?.[0]?.message).toMatch(/challenge/);
    const replay = await verify(await challengeFor(email), code);
    expect(replay.data).toBeNull();
    expect(errorOf(replay)).toEqual({ code: 'UNAUTHENTICATED' });
  });

  it('signs in in one request with the code beside the password; a wrong or replayed code is refused', async () => {
    const { email, app } = await enrolled('ada-one-step@example.com');
    const ONE_STEP = `mutation ($email: String!, $password: String!, $code: String) {
      signIn(email: $email, password: $password, mfaCode: $code) {
        __typename ... on AuthPayload { accessToken user { email } } } }`;
    const wrong = await as(undefined, ONE_STEP, { email, password: PASSWORD, code: '123456' });
    expect(errorOf(wrong)).toEqual({ code: 'UNAUTHENTICATED' });
    expect(wrong.errors?.[0]?.message).toBe('Invalid code');
    const code = await app.code();
    const done = await as<{ signIn: { __typename: string; user: { email: string } } }>(
      undefined,
      ONE_STEP,
      { email, password: PASSWORD, code },
    );
    expect(done.data?.signIn).toMatchObject({ __typename: 'AuthPayload', user: { email } });
    const replay = await as(undefined, ONE_STEP, { email, password: PASSWORD, code });
    expect(errorOf(replay)).toEqual({ code: 'UNAUTHENTICATED' });
    // login takes it too.
    const login = await as<{ login: { accessToken: string } }>(
      undefined,
      `mutation ($email: String!, $password: String!, $code: String) {
        login(email: $email, password: $password, mfaCode: $code) { accessToken } }`,
      { email, password: PASSWORD, code: await app.code() },
    );
    expect(login.data?.login.accessToken).toEqual(expect.any(String));
  });

  it('takes a blank code as none (no guess counted), refuses an overlong one, and ignores a device token it never issued', async () => {
    const { email, app } = await enrolled('ada-edge@example.com');
    const WITH = `mutation ($email: String!, $password: String!, $code: String, $device: String) {
      signIn(email: $email, password: $password, mfaCode: $code, deviceToken: $device) {
        __typename ... on AuthPayload { deviceToken } } }`;
    const send = (variables: { code?: string; device?: string }) =>
      as<{ signIn: { __typename: string; deviceToken?: string } }>(undefined, WITH, {
        email,
        password: PASSWORD,
        ...variables,
      });
    // More blank codes than the guesses a client may make: each is the challenge, none a guess.
    for (let n = 0; n <= GUESSES_PER_CLIENT; n++)
      expect((await send({ code: '   ' })).data?.signIn.__typename).toBe('MfaChallenge');
    const overlong = await send({ code: '1'.repeat(40) });
    expect(errorOf(overlong)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'mfaCode' });
    // A device token of 10,000 characters is no device token: not kept with the challenge it
    // asks for, and a normal sign-in issues a new one.
    const garbage = 'A'.repeat(10_000);
    expect((await send({ device: garbage })).data?.signIn.__typename).toBe('MfaChallenge');
    const db = new pg.Client({ connectionString: platform.run.databaseUrl });
    await db.connect();
    try {
      const kept = await db.query<{ device_token: string | null }>(
        `SELECT c.device_token FROM auth.mfa_challenges c
         JOIN users.users u ON u.id = c.user_id WHERE u.email = $1`,
        [email],
      );
      expect(kept.rows.length).toBeGreaterThan(0);
      expect(kept.rows.filter((row) => row.device_token !== null)).toEqual([]);
    } finally {
      await db.end();
    }
    const done = await send({ code: await app.code(), device: garbage });
    expect(done.data?.signIn.__typename).toBe('AuthPayload');
    expect(done.data?.signIn.deviceToken).toMatch(/^[\w-]{43}$/);
  });

  it('takes each recovery code once, and tells the user it was used', async () => {
    const { account, email, codes } = await enrolled('linus@example.com');
    const first = await verify(await challengeFor(email), codes[0]!.toUpperCase());
    expect(first.data?.verifyMfa.user.email).toBe(email);
    const again = await verify(await challengeFor(email), codes[0]!);
    expect(errorOf(again)).toEqual({ code: 'UNAUTHENTICATED' });
    const left = await as<{ myMfa: { recoveryCodesLeft: number } }>(
      account,
      '{ myMfa { recoveryCodesLeft } }',
    );
    expect(left.data?.myMfa.recoveryCodesLeft).toBe(9);
    await noticeDelivered(account, email, 'A recovery code was used');
  });

  it('counts wrong codes against the sign-in limits: RATE_LIMITED before any code is checked', async () => {
    const { email, app } = await enrolled('mallory-target@example.com');
    const [first, second] = [await challengeFor(email), await challengeFor(email)];
    for (let i = 0; i < GUESSES_PER_CLIENT; i++) {
      const guess = await verify(first, String(100000 + i));
      expect(errorOf(guess)?.['code']).toBe('UNAUTHENTICATED');
    }
    const limited = await verify(second, await app.code());
    expect(errorOf(limited)).toMatchObject({ code: 'RATE_LIMITED' });
    expect(errorOf(limited)?.['retryAfter']).toBeGreaterThan(0);
    // The same buckets as the password: signing in again from here waits too.
    const signIn = await as(undefined, SIGN_IN, { email, password: PASSWORD });
    expect(errorOf(signIn)?.['code']).toBe('RATE_LIMITED');
  });

  it('needs recent authentication to turn TOTP off, then sends a notice; the password alone signs in again', async () => {
    const { account, email, codes, staleFrom } = await staleAccount;
    await pause(staleFrom - Date.now());

    const stale = await as(account, 'mutation { disableTotp }');
    expect(errorOf(stale)).toEqual({ code: 'FORBIDDEN', reason: 'REAUTHENTICATION_REQUIRED' });
    const regenerate = await as(account, 'mutation { regenerateRecoveryCodes { codes } }');
    expect(errorOf(regenerate)?.['reason']).toBe('REAUTHENTICATION_REQUIRED');

    const REAUTH =
      'mutation ($p: String, $c: String) { reauthenticate(password: $p, code: $c) { recentUntil } }';
    const wrong = await as(account, REAUTH, { p: 'not my password' });
    expect(errorOf(wrong)).toEqual({ code: 'BAD_USER_INPUT', field: 'password' });
    const both = await as(account, REAUTH, { p: PASSWORD, c: codes[1] });
    expect(errorOf(both)?.['code']).toBe('BAD_USER_INPUT');
    // With a second factor on, the password alone does not re-authenticate; a code does.
    const passwordAlone = await as(account, REAUTH, { p: PASSWORD });
    expect(errorOf(passwordAlone)).toEqual({ code: 'BAD_USER_INPUT', field: 'password' });
    const proved = await as<{ reauthenticate: { recentUntil: string } }>(account, REAUTH, {
      c: codes[2],
    });
    expect(new Date(proved.data!.reauthenticate.recentUntil).getTime()).toBeGreaterThan(Date.now());

    const disabled = await as(account, 'mutation { disableTotp }');
    expect(disabled.data).toEqual({ disableTotp: true });
    await noticeDelivered(account, email, 'Two-step sign-in was turned off');

    const login = await as<{ login: { accessToken: string } }>(undefined, LOGIN, {
      email,
      password: PASSWORD,
    });
    expect(login.data?.login.accessToken).toEqual(expect.any(String));
    const signIn = await as<{ signIn: SignInResult }>(undefined, SIGN_IN, {
      email,
      password: PASSWORD,
    });
    expect(signIn.data?.signIn.__typename).toBe('AuthPayload');
  });

  it('shows mfaEnrolled to users:read only', async () => {
    const { account } = await enrolled('enrolled@example.com');
    const other = await signUp(gateway, 'plain@example.com', PASSWORD);
    const QUERY = 'query ($id: ID!) { user(id: $id) { email mfaEnrolled } }';

    const byAdmin = await as<{
      users: { edges: { node: { email: string; mfaEnrolled: boolean } }[] };
    }>(platform.admin, '{ users(first: 100) { edges { node { email mfaEnrolled } } } }');
    const nodes = byAdmin.data!.users.edges.map((edge) => edge.node);
    expect(nodes).toContainEqual({ email: 'enrolled@example.com', mfaEnrolled: true });
    expect(nodes).toContainEqual({ email: 'plain@example.com', mfaEnrolled: false });

    const self = await as<{ user: { mfaEnrolled: boolean } }>(other, QUERY, { id: other.id });
    expect(self.data?.user.mfaEnrolled).toBe(false);
    // Another user's profile is not theirs to read at all.
    const stranger = await as(other, QUERY, { id: account.id });
    expect(errorOf(stranger)?.['code']).toBe('FORBIDDEN');
  });
});

describe('the key that seals TOTP secrets, in production', () => {
  const start = (env: Record<string, string>) =>
    spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../../services/auth/dist/main.js', import.meta.url))],
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          NODE_ENV: 'production',
          INTERNAL_TOKEN: 'x'.repeat(32),
          SMTP_URL: 'smtp://127.0.0.1:2525',
          ...env,
        },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );

  it('is required: the auth service refuses to start without it, or with the development key, saying why', () => {
    const without = start({});
    expect(without.status).toBe(78);
    expect(without.stderr).toContain('MFA_ENCRYPTION_KEYS: is required in production');
    const development = start({
      MFA_ENCRYPTION_KEYS: `dev:${Buffer.alloc(32, 'development-only-mfa-key').toString('base64')}`,
    });
    expect(development.status).toBe(78);
    expect(development.stderr).toContain('must not contain the development key');
  });
});
