import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_NAMES } from '@platform/apps';
import {
  createTestRun,
  eventually,
  startApps,
  type AppCluster,
  type TestRun,
} from '@platform/testing';
import { graphql } from './graphql.client';

interface AuthPayload {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: { id: string; email: string; displayName: string; status: string };
}

const AUTH_FIELDS = 'accessToken refreshToken expiresIn user { id email displayName status }';
const REGISTER = `mutation ($input: RegisterInput!) { register(input: $input) { ${AUTH_FIELDS} } }`;
const LOGIN = `mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { ${AUTH_FIELDS} } }`;
const REFRESH = `mutation ($token: String!) { refreshSession(refreshToken: $token) { ${AUTH_FIELDS} } }`;
const GRACE_SECONDS = 1;
const ADDRESS_LIMIT = 40;
let addressCounter = 0;
/** A client address of its own (TEST-NET-3), so tests do not share rate-limit counters. */
const newAddress = () => `203.0.113.${++addressCounter}`;

describe('identity: registration, sign-in, refresh rotation and sessions through the gateway', () => {
  let run: TestRun;
  let apps: AppCluster;
  let gateway: string;

  beforeAll(async () => {
    run = await createTestRun();
    apps = await startApps(run, APP_NAMES, {
      'auth-service': { REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS) },
      'users-subgraph': { RATE_LIMIT_PER_ADDRESS: String(ADDRESS_LIMIT) },
      // Lets each test act from its own client address (X-Forwarded-For).
      gateway: { TRUST_PROXY: 'true' },
    });
    gateway = apps.httpUrl('gateway');
  });

  afterAll(async () => {
    await apps?.stopAll();
    await run?.close();
  });

  const register = async (
    email: string,
    password = 'correct horse battery',
    displayName = 'Ada',
  ) => {
    const response = await graphql<{ register: AuthPayload }>(gateway, REGISTER, {
      variables: { input: { email, password, displayName } },
    });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.register;
  };
  const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
    response.errors?.[0]?.extensions?.['code'];

  it('registers, signs in, rotates refresh tokens, detects reuse and ends sessions', async () => {
    const registered = await register('  Grace@Example.com ');
    expect(registered.user).toMatchObject({
      email: 'grace@example.com',
      displayName: 'Ada',
      status: 'ACTIVE',
    });
    expect(registered.expiresIn).toBe(900);

    const me = await graphql<{ me: { id: string; email: string } }>(
      gateway,
      '{ me { id email } }',
      {
        token: registered.accessToken,
      },
    );
    expect(me.data?.me).toEqual({ id: registered.user.id, email: 'grace@example.com' });

    // The new user holds the "user" role at once, and nothing more.
    const permissions = await graphql<{ me: { permissions: string[] }; hasPermission: boolean }>(
      gateway,
      '{ me { permissions } hasPermission(permission: "users:read") }',
      { token: registered.accessToken },
    );
    expect(permissions.data).toEqual({ me: { permissions: [] }, hasPermission: false });

    // Rotation: the new token works; the old one is tolerated within the grace window (two tabs)...
    const first = await graphql<{ refreshSession: AuthPayload }>(gateway, REFRESH, {
      variables: { token: registered.refreshToken },
    });
    expect(first.data?.refreshSession.refreshToken).not.toBe(registered.refreshToken);
    const secondTab = await graphql<{ refreshSession: AuthPayload }>(gateway, REFRESH, {
      variables: { token: registered.refreshToken },
    });
    expect(secondTab.data?.refreshSession.user.id).toBe(registered.user.id);
    // Two tabs refreshing at the very same moment are both served, with the same token (one chain).
    const together = await Promise.all(
      [1, 2].map(() =>
        graphql<{ refreshSession: AuthPayload }>(gateway, REFRESH, {
          variables: { token: first.data!.refreshSession.refreshToken },
        }),
      ),
    );
    const tabTokens = together.map((tab) => tab.data?.refreshSession.refreshToken);
    expect(tabTokens.every(Boolean)).toBe(true);
    expect(new Set(tabTokens).size).toBe(1);

    // ...but after it, the old token is treated as stolen: the whole session ends. (A replay
    // inside the window only gets the live token back, so asking until then changes nothing.)
    await eventually(
      async () => {
        const replay = await graphql(gateway, REFRESH, {
          variables: { token: registered.refreshToken },
        });
        expect(codeOf(replay)).toBe('UNAUTHENTICATED');
      },
      (GRACE_SECONDS + 10) * 1000,
    );
    const afterTheft = await graphql(gateway, REFRESH, {
      variables: { token: first.data!.refreshSession.refreshToken },
    });
    expect(codeOf(afterTheft)).toBe('UNAUTHENTICATED');
    const revokedAccess = await graphql(gateway, '{ me { id } }', {
      token: first.data!.refreshSession.accessToken,
    });
    expect(codeOf(revokedAccess)).toBe('UNAUTHENTICATED');

    // Sign in twice (two devices); logoutAll ends both, and their access tokens stop at once.
    const laptop = await graphql<{ login: AuthPayload }>(gateway, LOGIN, {
      variables: { email: 'grace@example.com', password: 'correct horse battery' },
      headers: { 'user-agent': 'laptop-browser/1.0' },
    });
    const phone = await graphql<{ login: AuthPayload }>(gateway, LOGIN, {
      variables: { email: 'GRACE@example.com', password: 'correct horse battery' },
      headers: { 'user-agent': 'phone-app/2.0' },
    });
    // The stolen refresh token left a security notice in the owner's inbox.
    await eventually(async () => {
      const inbox = await graphql<{
        me: { notifications: { edges: { node: { type: string; title: string } }[] } };
      }>(gateway, '{ me { notifications(first: 5) { edges { node { type title } } } } }', {
        token: phone.data!.login.accessToken,
      });
      expect(inbox.data?.me.notifications.edges.map((edge) => edge.node)).toContainEqual({
        type: 'security',
        title: 'A session was signed out for your safety',
      });
    }, 10_000);
    const sessions = await graphql<{ mySessions: { userAgent: string; current: boolean }[] }>(
      gateway,
      '{ mySessions { userAgent current } }',
      { token: phone.data!.login.accessToken },
    );
    expect(sessions.data?.mySessions).toEqual([
      { userAgent: 'phone-app/2.0', current: true },
      { userAgent: 'laptop-browser/1.0', current: false },
    ]);

    const loggedOut = await graphql<{ logoutAll: boolean }>(gateway, 'mutation { logoutAll }', {
      token: laptop.data!.login.accessToken,
    });
    expect(loggedOut.data?.logoutAll).toBe(true);
    for (const token of [laptop.data!.login.accessToken, phone.data!.login.accessToken]) {
      expect(codeOf(await graphql(gateway, '{ me { id } }', { token }))).toBe('UNAUTHENTICATED');
    }
    const staleRefresh = await graphql(gateway, REFRESH, {
      variables: { token: phone.data!.login.refreshToken },
    });
    expect(codeOf(staleRefresh)).toBe('UNAUTHENTICATED');
  });

  it('logout ends only the current session; revokeSession ends another', async () => {
    const registered = await register('lin@example.com');
    const other = await graphql<{ login: AuthPayload }>(gateway, LOGIN, {
      variables: { email: 'lin@example.com', password: 'correct horse battery' },
    });
    const sessions = await graphql<{ mySessions: { id: string; current: boolean }[] }>(
      gateway,
      '{ mySessions { id current } }',
      { token: registered.accessToken },
    );
    const otherSession = sessions.data!.mySessions.find((session) => !session.current)!;
    await graphql(gateway, `mutation { revokeSession(id: "${otherSession.id}") }`, {
      token: registered.accessToken,
    });
    expect(
      codeOf(await graphql(gateway, '{ me { id } }', { token: other.data!.login.accessToken })),
    ).toBe('UNAUTHENTICATED');
    const unknown = await graphql(gateway, `mutation { revokeSession(id: "${otherSession.id}") }`, {
      token: registered.accessToken,
    });
    expect(codeOf(unknown)).toBe('NOT_FOUND');

    await graphql(gateway, 'mutation { logout }', { token: registered.accessToken });
    expect(codeOf(await graphql(gateway, '{ me { id } }', { token: registered.accessToken }))).toBe(
      'UNAUTHENTICATED',
    );
  });

  it('gives a wrong password and an unknown email the same answer', async () => {
    await register('kim@example.com');
    const wrongPassword = await graphql(gateway, LOGIN, {
      variables: { email: 'kim@example.com', password: 'not the password' },
    });
    const unknownEmail = await graphql(gateway, LOGIN, {
      variables: { email: 'nobody@example.com', password: 'not the password' },
    });
    expect(wrongPassword.errors?.[0]).toMatchObject({
      message: 'Invalid email or password',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    expect(unknownEmail.errors?.[0]).toEqual(wrongPassword.errors?.[0]);
  });

  it('refuses a duplicate email with CONFLICT and bad input with BAD_USER_INPUT naming the field', async () => {
    await register('dup@example.com');
    const duplicate = await graphql(gateway, REGISTER, {
      variables: {
        input: { email: 'DUP@example.com', password: 'another password', displayName: 'B' },
      },
    });
    expect(codeOf(duplicate)).toBe('CONFLICT');

    for (const [input, field] of [
      [{ email: 'not-an-email', password: 'long enough', displayName: 'A' }, 'email'],
      [{ email: 'a@example.com', password: 'short', displayName: 'A' }, 'password'],
      [{ email: 'a@example.com', password: 'x'.repeat(129), displayName: 'A' }, 'password'],
      [{ email: 'a@example.com', password: 'long enough', displayName: '   ' }, 'displayName'],
      [
        { email: 'a@example.com', password: 'long enough', displayName: 'x'.repeat(101) },
        'displayName',
      ],
    ] as const) {
      const response = await graphql(gateway, REGISTER, { variables: { input } });
      expect(response.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field });
      expect(response.errors?.[0]?.message).toMatch(new RegExp(`^${field}: `));
    }
    // None of the refused registrations left an account behind.
    const login = await graphql(gateway, LOGIN, {
      variables: { email: 'a@example.com', password: 'long enough' },
    });
    expect(codeOf(login)).toBe('UNAUTHENTICATED');
  });

  it('checks 5 wrong passwords per account from one address, for unknown emails alike, and not the next', async () => {
    await register('brute@example.com');
    const attacker = newAddress();
    const attempt = (email: string, password: string, address = attacker) =>
      graphql<{ login: AuthPayload }>(gateway, LOGIN, {
        variables: { email, password },
        headers: { 'x-forwarded-for': address },
      });
    for (const email of ['brute@example.com', 'ghost@example.com']) {
      for (let failure = 1; failure <= 5; failure++) {
        expect(codeOf(await attempt(email, 'wrong password'))).toBe('UNAUTHENTICATED');
      }
      // Even the right password waits now; the answer says for how long.
      const blocked = await attempt(email, 'correct horse battery');
      expect(blocked.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
      expect(blocked.errors?.[0]?.extensions?.['retryAfter']).toBeGreaterThanOrEqual(1);
    }
    // The owner, elsewhere, is not locked out by it (docs/identity.md, "Brute force").
    const success = await attempt('brute@example.com', 'correct horse battery', newAddress());
    expect(success.data?.login.user.email).toBe('brute@example.com');
  });

  it('limits sign-in attempts per client address, without affecting other addresses', async () => {
    const address = newAddress();
    let limited: Awaited<ReturnType<typeof graphql>> | undefined;
    // The window slides: the attempt after the limit is refused, whenever the run began.
    for (let attempt = 0; attempt <= ADDRESS_LIMIT && !limited; attempt++) {
      const response = await graphql(gateway, LOGIN, {
        variables: { email: `nobody-${attempt}@example.com`, password: 'wrong password' },
        headers: { 'x-forwarded-for': address },
      });
      if (codeOf(response) === 'RATE_LIMITED') limited = response;
      else expect(codeOf(response)).toBe('UNAUTHENTICATED');
    }
    expect(limited?.errors?.[0]?.extensions?.['retryAfter']).toBeGreaterThanOrEqual(1);
    expect(limited?.errors?.[0]?.extensions?.['retryAfter']).toBeLessThanOrEqual(60);
    const elsewhere = await graphql(gateway, LOGIN, {
      variables: { email: 'nobody@example.com', password: 'wrong password' },
      headers: { 'x-forwarded-for': newAddress() },
    });
    expect(codeOf(elsewhere)).toBe('UNAUTHENTICATED');
  });

  it('rotates the signing key: the old public key stays published and its tokens keep working', async () => {
    const before = await register('rotation@example.com');
    const jwks = async () =>
      (
        (await (await fetch(`${gateway}/.well-known/jwks.json`)).json()) as {
          keys: { kid: string }[];
        }
      ).keys.map((key) => key.kid);
    const oldKids = await jwks();
    await apps.stop('auth-service');
    await apps.start('auth-service', { SIGNING_KEY_MAX_AGE_DAYS: '0.000001' });
    // The gateway reconnects to the restarted service within its back-off (answering 503 meanwhile).
    const kids = await eventually(async () => {
      const published = await jwks();
      expect(published).toHaveLength(oldKids.length + 1);
      return published;
    }, 10_000);
    expect(kids).toHaveLength(oldKids.length + 1);
    expect(kids).toEqual(expect.arrayContaining(oldKids));

    const headerKid = (token: string) =>
      (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string })
        .kid;
    // Each subgraph's channel to the restarted service reconnects on its own back-off (up to
    // 2 s): until then sign-in answers SERVICE_UNAVAILABLE with Retry-After, as a client sees.
    const after = await eventually(async () => {
      const response = await graphql<{ login: AuthPayload }>(gateway, LOGIN, {
        variables: { email: 'rotation@example.com', password: 'correct horse battery' },
        headers: { 'x-forwarded-for': newAddress() },
      });
      if (!response.data) {
        expect(response.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
        throw new Error(`not yet: ${JSON.stringify(response.errors)}`);
      }
      return response.data.login;
    }, 10_000);
    expect(oldKids).not.toContain(headerKid(after.accessToken));
    for (const token of [before.accessToken, after.accessToken]) {
      const me = await graphql<{ me: { email: string } }>(gateway, '{ me { email } }', { token });
      expect(me.data?.me.email).toBe('rotation@example.com');
    }
  });

  it('refuses tampered, forged, expired and misaddressed access tokens', async () => {
    const { accessToken, user } = await register('tamper@example.com');
    const [header, payload, signature] = accessToken.split('.') as [string, string, string];
    const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string };
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const forge = (
      extra: Record<string, unknown>,
      options: jwt.SignOptions = {},
      key: jwt.Secret = attacker,
    ) => jwt.sign({ ...claims, ...extra }, key, { algorithm: 'ES256', keyid: kid, ...options });
    const otherUser = Buffer.from(
      JSON.stringify({ ...claims, sub: '00000000-0000-4000-8000-000000000000' }),
    ).toString('base64url');

    const cases: [string, string][] = [
      ['payload changed, signature kept', `${header}.${otherUser}.${signature}`],
      ['signed by another key under the real kid', forge({})],
      ['alg none', jwt.sign({ ...claims }, null, { algorithm: 'none', keyid: kid })],
      ['HS256 (a symmetric algorithm)', forge({}, { algorithm: 'HS256' }, 'not-the-key')],
      ['expired', forge({ exp: Math.floor(Date.now() / 1000) - 60 })],
      ['for another audience', forge({ aud: 'someone-else' })],
      ['from another issuer', forge({ iss: 'evil' })],
    ];
    for (const [name, token] of cases) {
      const response = await graphql(gateway, '{ me { id } }', { token });
      expect(codeOf(response), name).toBe('UNAUTHENTICATED');
    }
    // The genuine token still works.
    const genuine = await graphql<{ me: { id: string } }>(gateway, '{ me { id } }', {
      token: accessToken,
    });
    expect(genuine.data?.me.id).toBe(user.id);
  });

  it('greets a new user with a welcome notification in their inbox', async () => {
    const registered = await register('wen@example.com', 'correct horse battery', 'Wen');
    const inbox = await eventually(async () => {
      const response = await graphql<{
        me: {
          unreadNotificationCount: number;
          notifications: { edges: { node: { title: string } }[] };
        };
      }>(gateway, '{ me { unreadNotificationCount notifications { edges { node { title } } } } }', {
        token: registered.accessToken,
      });
      expect(response.data?.me.unreadNotificationCount).toBe(1);
      return response.data!.me;
    });
    expect(inbox.notifications.edges.map((edge) => edge.node.title)).toEqual(['Welcome, Wen!']);
  });
});
