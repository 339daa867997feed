import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, signUp, type GraphQLResponse } from './graphql.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

const PASSWORD = 'correct horse battery';
/** The defaults (docs/identity.md): wrong guesses per account from one address... */
const PER_CLIENT = 5;
/** ...and, lowered here so a test need not make 50, per account from anywhere. */
const PER_ACCOUNT = 12;

const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken user { id email } } }`;
const LOGIN_ON_DEVICE = `mutation ($email: String!, $password: String!, $deviceToken: String) {
  login(email: $email, password: $password, deviceToken: $deviceToken) {
    accessToken deviceToken user { id email } } }`;
const CHANGE_PASSWORD = `mutation ($current: String!, $next: String!) {
  changePassword(currentPassword: $current, newPassword: $next) }`;
const DELETE_USER = `mutation ($id: ID!, $currentPassword: String) {
  deleteUser(id: $id, currentPassword: $currentPassword) }`;

interface SignIn {
  login: { accessToken: string; deviceToken?: string | null; user: { id: string; email: string } };
}

let addressCounter = 0;
/** A client address of its own (TEST-NET-3, then TEST-NET-2), as the gateway's proxy reports it. */
const newAddress = () => {
  addressCounter++;
  return `${addressCounter < 250 ? '203.0.113' : '198.51.100'}.${addressCounter % 250}`;
};

describe('brute-force protection of passwords through the gateway', () => {
  let platform: Platform | undefined;
  let gateway: string;
  let emailCounter = 0;

  beforeAll(async () => {
    platform = await startPlatform({
      // Each test acts from addresses of its own (X-Forwarded-For).
      gateway: { TRUST_PROXY: 'true' },
      'auth-service': { PASSWORD_GUESSES_PER_ACCOUNT: String(PER_ACCOUNT) },
    });
    gateway = platform.gateway;
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  /** Posts like a frontend from `address`; a client fault is never answered with a 5xx. */
  async function send<T>(
    query: string,
    variables: Record<string, unknown>,
    options: { address: string; token?: string },
  ): Promise<GraphQLResponse<T>> {
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': options.address,
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    expect(response.status).toBeLessThan(500);
    return (await response.json()) as GraphQLResponse<T>;
  }

  const login = (email: string, password: string, address: string) =>
    send<SignIn>(LOGIN, { email, password }, { address });
  /** Signs in as an app that keeps the device token it was given. */
  const loginOnDevice = (email: string, password: string, address: string, deviceToken?: string) =>
    send<SignIn>(LOGIN_ON_DEVICE, { email, password, deviceToken }, { address });
  const newAccount = async () => {
    const email = `owner-${++emailCounter}@example.com`;
    return { email, ...(await signUp(gateway, email, PASSWORD)) };
  };
  /** What each answer said: the error code, or 'ok'. */
  const outcomes = (responses: GraphQLResponse<unknown>[]) =>
    responses.map((response) => (codeOf(response) as string | undefined) ?? 'ok');
  const count = (all: string[], outcome: string) => all.filter((one) => one === outcome).length;
  const retryAfterOf = (response: GraphQLResponse<unknown>) =>
    response.errors?.[0]?.extensions?.['retryAfter'];

  it('checks only 5 of 60 wrong passwords sent at once from one address, every time', async () => {
    for (let round = 0; round < 3; round++) {
      const { email } = await newAccount();
      const address = newAddress();
      const responses = await Promise.all(
        Array.from({ length: 60 }, (_, i) => login(email, `wrong guess ${i}`, address)),
      );
      const all = outcomes(responses);
      expect(count(all, 'UNAUTHENTICATED')).toBe(PER_CLIENT);
      expect(count(all, 'RATE_LIMITED')).toBe(60 - PER_CLIENT);
      const limited = responses.filter((response) => codeOf(response) === 'RATE_LIMITED');
      for (const response of limited) expect(retryAfterOf(response)).toBeGreaterThanOrEqual(1);
    }
  });

  it('counts guesses by the address the proxy saw, whatever the client wrote before it', async () => {
    // A proxy that appends to X-Forwarded-For keeps the client's own entries in front of the
    // one it adds: a new made-up address in front each time must not make a new client.
    const { email } = await newAccount();
    const address = newAddress();
    const all = outcomes(
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          login(email, `wrong guess ${i}`, `10.9.${i}.1, 192.0.2.${i + 1}, ${address}`),
        ),
      ),
    );
    expect(count(all, 'UNAUTHENTICATED')).toBe(PER_CLIENT);
    expect(count(all, 'RATE_LIMITED')).toBe(20 - PER_CLIENT);
  });

  it('checks at most 5 wrong guesses of 60 sent at once even when the 41st is right, every time', async () => {
    for (let round = 0; round < 3; round++) {
      const { email } = await newAccount();
      const address = newAddress();
      const all = outcomes(
        await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            login(email, i === 40 ? PASSWORD : `wrong guess ${i}`, address),
          ),
        ),
      );
      expect(count(all, 'UNAUTHENTICATED')).toBeLessThanOrEqual(PER_CLIENT);
      // The right one signs in only if it was among the guesses let through.
      expect(count(all, 'ok')).toBeLessThanOrEqual(1);
      expect(count(all, 'UNAUTHENTICATED') + count(all, 'ok') + count(all, 'RATE_LIMITED')).toBe(
        60,
      );
    }
  });

  it('does not let an attacker failing from one address stop the owner signing in from another', async () => {
    const { email, id } = await newAccount();
    const attacker = newAddress();
    const attempts = [];
    for (let i = 0; i < 20; i++) attempts.push(await login(email, `guess ${i}`, attacker));
    expect(outcomes(attempts)).toEqual([
      ...Array<string>(PER_CLIENT).fill('UNAUTHENTICATED'),
      ...Array<string>(20 - PER_CLIENT).fill('RATE_LIMITED'),
    ]);
    expect(codeOf(await login(email, PASSWORD, attacker))).toBe('RATE_LIMITED');

    const owner = await login(email, PASSWORD, newAddress());
    expect(owner.data?.login.user.id).toBe(id);
  });

  it('lets a device that signed in before through while strangers are throttled', async () => {
    const { email, id } = await newAccount();
    const home = await loginOnDevice(email, PASSWORD, newAddress());
    const deviceToken = home.data?.login.deviceToken;
    expect(deviceToken).toEqual(expect.any(String));

    // Guesses spread over many addresses use up the account-wide allowance.
    const spread = [];
    for (let i = 0; i < PER_ACCOUNT + 5; i++)
      spread.push(await login(email, `guess ${i}`, newAddress()));
    expect(count(outcomes(spread), 'UNAUTHENTICATED')).toBe(PER_ACCOUNT);
    expect(outcomes(spread).slice(PER_ACCOUNT)).toEqual(Array<string>(5).fill('RATE_LIMITED'));

    // A stranger waits, even with the right password; so does a device token of someone else.
    const stranger = await login(email, PASSWORD, newAddress());
    expect(codeOf(stranger)).toBe('RATE_LIMITED');
    expect(retryAfterOf(stranger)).toBeGreaterThanOrEqual(1);
    const other = await newAccount();
    const othersToken = (await loginOnDevice(other.email, PASSWORD, newAddress())).data?.login
      .deviceToken;
    expect(othersToken).toEqual(expect.any(String));
    expect(codeOf(await loginOnDevice(email, PASSWORD, newAddress(), othersToken ?? ''))).toBe(
      'RATE_LIMITED',
    );

    // The owner's device signs in from wherever it is, and keeps its token.
    const travelling = await loginOnDevice(email, PASSWORD, newAddress(), deviceToken ?? '');
    expect(travelling.data?.login.user.id).toBe(id);
    expect(travelling.data?.login.deviceToken).toBe(deviceToken);
  });

  it('refuses changePassword after 5 of 30 wrong current passwords, and then the right one too', async () => {
    const { email, token } = await newAccount();
    const thief = newAddress();
    const change = (current: string) =>
      send(CHANGE_PASSWORD, { current, next: 'the thief wants this' }, { address: thief, token });
    const all = outcomes(
      await Promise.all(Array.from({ length: 30 }, (_, i) => change(`guess ${i}`))),
    );
    expect(count(all, 'BAD_USER_INPUT')).toBe(PER_CLIENT);
    expect(count(all, 'RATE_LIMITED')).toBe(30 - PER_CLIENT);

    const right = await change(PASSWORD);
    expect(codeOf(right)).toBe('RATE_LIMITED');
    expect(retryAfterOf(right)).toBeGreaterThanOrEqual(1);
    // The password did not change: the owner still signs in with it, elsewhere.
    expect((await login(email, PASSWORD, newAddress())).data?.login.user.email).toBe(email);
  });

  it('refuses to delete oneself without the password or with a wrong one, and deletes with the right one', async () => {
    const { email, id, token } = await newAccount();
    const address = newAddress();
    const deleteSelf = (currentPassword?: string) =>
      send(DELETE_USER, { id, currentPassword }, { address, token });

    const missing = await deleteSelf();
    expect(missing.errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'currentPassword',
    });
    const wrong = await deleteSelf('not my password');
    expect(wrong.errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'currentPassword',
    });
    const me = await send<{ me: { id: string } }>('{ me { id } }', {}, { address, token });
    expect(me.data?.me.id).toBe(id);

    expect((await deleteSelf(PASSWORD)).data).toEqual({ deleteUser: true });
    expect(codeOf(await login(email, PASSWORD, newAddress()))).toBe('UNAUTHENTICATED');
  });

  it('limits wrong passwords for deleting oneself like login, and an admin needs none to delete someone', async () => {
    const { id, token } = await newAccount();
    const address = newAddress();
    const deleteSelf = (currentPassword: string) =>
      send(DELETE_USER, { id, currentPassword }, { address, token });
    for (let i = 0; i < PER_CLIENT; i++) {
      expect(codeOf(await deleteSelf(`guess ${i}`))).toBe('BAD_USER_INPUT');
    }
    expect(codeOf(await deleteSelf(PASSWORD))).toBe('RATE_LIMITED');

    const byAdmin = await send(DELETE_USER, { id }, { address, token: platform!.admin.token });
    expect(byAdmin.data).toEqual({ deleteUser: true });
  });
});
