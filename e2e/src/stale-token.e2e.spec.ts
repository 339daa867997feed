import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@platform/testing';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { signUp } from './graphql.client';

/** The contract's `extensions.reason` for each kind of stale token. */
const CONTRACT_REASON = {
  invalid: 'TOKEN_INVALID',
  ended: 'SESSION_ENDED',
  expired: 'TOKEN_EXPIRED',
} as const;

const TOKEN_TTL_SECONDS = 2;

/** A POST as a browser app sends it, keeping the HTTP status and headers. */
async function post(gateway: string, query: string, token?: string, accept?: string) {
  const response = await fetch(`${gateway}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(accept ? { accept } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
  return { status: response.status, headers: response.headers, body };
}

describe('an access token the gateway refuses is the client’s fault, never a 5xx', () => {
  let platform: Platform | undefined;
  let gateway: string;
  const stale: Record<'invalid' | 'ended' | 'expired', string> = {
    invalid: '',
    ended: '',
    expired: '',
  };

  beforeAll(async () => {
    platform = await startPlatform({
      'auth-service': { ACCESS_TOKEN_TTL: String(TOKEN_TTL_SECONDS) },
    });
    gateway = platform.gateway;
    const user = await signUp(gateway, 'stale@example.com');
    stale.invalid = `${user.token.slice(0, -4)}AAAA`;
    stale.expired = user.token;
    const ending = await signUp(gateway, 'ending@example.com');
    const logout = await post(gateway, 'mutation { logout }', ending.token);
    expect(logout.body.errors).toBeUndefined();
    stale.ended = ending.token;
    // The access token outlives nothing: wait until the gateway says it has expired.
    await eventually(
      async () => {
        const { body } = await post(gateway, '{ me { id } }', stale.expired);
        expect(body.errors?.[0]?.extensions?.['reason']).toBe('TOKEN_EXPIRED');
      },
      (TOKEN_TTL_SECONDS + 5) * 1000,
    );
  });

  afterAll(() => stopPlatform(platform));

  it.each(['invalid', 'ended', 'expired'] as const)(
    'refuses a protected operation with an %s token: 401, UNAUTHENTICATED and the reason',
    async (reason) => {
      for (const accept of [undefined, 'application/json']) {
        const { status, headers, body } = await post(
          gateway,
          '{ me { id } }',
          stale[reason],
          accept,
        );
        expect(status).toBe(401);
        expect(headers.get('www-authenticate')).toContain('Bearer');
        expect(body.data ?? null).toBeNull();
        expect(body.errors?.[0]?.extensions).toEqual({
          code: 'UNAUTHENTICATED',
          reason: CONTRACT_REASON[reason],
        });
      }
    },
  );

  it.each(['invalid', 'ended', 'expired'] as const)(
    'signs in, registers, refreshes and asks for a reset with an %s token still attached',
    async (reason) => {
      const token = stale[reason];
      const login = await post(
        gateway,
        'mutation { login(email: "stale@example.com", password: "correct horse battery") { refreshToken user { email } } }',
        token,
      );
      expect(login.status).toBe(200);
      expect(login.body.errors).toBeUndefined();
      const signedIn = login.body.data?.['login'] as { refreshToken: string };

      const refreshed = await post(
        gateway,
        `mutation { refreshSession(refreshToken: "${signedIn.refreshToken}") { accessToken } }`,
        token,
      );
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.errors).toBeUndefined();

      const registered = await post(
        gateway,
        `mutation { register(input: { email: "new-${reason}@example.com", password: "correct horse battery", displayName: "New" }) { user { email } } }`,
        token,
      );
      expect(registered.body).toEqual({
        data: { register: { user: { email: `new-${reason}@example.com` } } },
      });

      const reset = await post(
        gateway,
        'mutation { requestPasswordReset(email: "stale@example.com") }',
        token,
      );
      expect(reset.body).toEqual({ data: { requestPasswordReset: true } });
    },
  );

  it('refuses a forged token whose payload is not JSON as invalid, and still serves public operations', async () => {
    // `typ: JWT` in the header makes the decoder parse the payload (here `x`) as JSON.
    const forged = 'eyJ0eXAiOiJKV1QifQ.eA.x';
    const refused = await post(gateway, '{ me { id } }', forged);
    expect(refused.status).toBe(401);
    expect(refused.body.errors?.[0]?.extensions).toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'TOKEN_INVALID',
    });
    const reset = await post(
      gateway,
      'mutation { requestPasswordReset(email: "stale@example.com") }',
      forged,
    );
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ data: { requestPasswordReset: true } });
  });

  it('refuses an operation mixing a public field with a protected one', async () => {
    const { status, body } = await post(
      gateway,
      'mutation { requestPasswordReset(email: "stale@example.com") logout }',
      stale.invalid,
    );
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions).toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'TOKEN_INVALID',
    });
  });

  it('does not treat the caller of a public operation as signed in with the stale token', async () => {
    // A public field with a protected one below it: it runs anonymously, so `me` is not the
    // stale token's user.
    const { body } = await post(
      gateway,
      'mutation { login(email: "stale@example.com", password: "wrong password") { user { id } } }',
      stale.ended,
    );
    expect(body.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    expect(body.errors?.[0]?.extensions?.['reason']).toBeUndefined();
  });
});
