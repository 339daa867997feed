import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { graphql, signIn, signUp } from './graphql.client';

/** A POST keeping the HTTP status and headers. */
async function post(
  gateway: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string,
) {
  const response = await fetch(`${gateway}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as {
    data?: unknown;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
  return { status: response.status, headers: response.headers, body };
}

const SESSIONS_PER_USER = 3;
const REGISTER = `mutation ($input: RegisterInput!) { register(input: $input) { user { id email } } }`;

describe('the gateway in production reveals nothing it need not, and refuses text no field takes', () => {
  let platform: Platform | undefined;
  let gateway: string;

  beforeAll(async () => {
    platform = await startPlatform({
      gateway: { NODE_ENV: 'production', CORS_ORIGINS: 'https://app.example' },
      'auth-service': { MAX_SESSIONS_PER_USER: String(SESSIONS_PER_USER) },
    });
    gateway = platform.gateway;
  });

  afterAll(() => stopPlatform(platform));

  it('answers a misspelt field without suggesting the schema’s names', async () => {
    const { status, body } = await post(gateway, '{ mee { id } }');
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    expect(body.errors?.[0]?.message).not.toMatch(/Did you mean/);
  });

  it('says only ready or not to the public, and everything to a caller with the internal credential', async () => {
    const open = await fetch(`${gateway}/ready`);
    expect(open.status).toBe(200);
    expect(await open.json()).toEqual({ status: 'ready' });
    const internal = await fetch(`${gateway}/ready`, {
      headers: { 'x-internal-token': platform!.run.internalToken },
    });
    expect(await internal.json()).toMatchObject({ status: 'ready', down: [] });
  });

  it('sends security headers and forbids caching a GraphQL answer', async () => {
    const { headers } = await post(gateway, '{ __typename }');
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(headers.get('x-frame-options')).toBe('DENY');
    expect(headers.get('cache-control')).toBe('no-store');
  });

  it.each([
    ['a NUL character', 'nul\u0000@example.com'],
    ['an unpaired surrogate', 'lone\uD800@example.com'],
  ])('refuses %s in variables with BAD_USER_INPUT, not a server error', async (_what, email) => {
    const { status, body } = await post(gateway, REGISTER, {
      input: { email, password: 'correct horse battery', displayName: 'x' },
    });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.email',
    });
  });

  it('refuses a display name that would display as something else', async () => {
    const { body } = await post(gateway, REGISTER, {
      input: {
        email: 'spoof@example.com',
        password: 'correct horse battery',
        displayName: 'admin\u202Enimda',
      },
    });
    expect(body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'displayName',
    });
  });

  it('treats the composed and decomposed spellings of an email as one account', async () => {
    await signUp(gateway, 'jos\u00e9@example.com');
    const again = await graphql(gateway, REGISTER, {
      variables: {
        input: {
          email: 'jose\u0301@example.com',
          password: 'correct horse battery',
          displayName: 'other',
        },
      },
    });
    expect(again.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
    await expect(
      signIn(gateway, 'jose\u0301@example.com', 'correct horse battery'),
    ).resolves.toMatchObject({ token: expect.any(String) as unknown });
  });

  it('serves automatic persisted queries: a hash first, the query once, then the hash alone', async () => {
    const query = '{ __typename }';
    const extensions = {
      persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') },
    };
    const byHash = () =>
      fetch(`${gateway}/graphql?extensions=${encodeURIComponent(JSON.stringify(extensions))}`, {
        headers: { 'apollo-require-preflight': 'true' },
      }).then((response) => response.json() as Promise<{ data?: unknown; errors?: unknown[] }>);
    expect(JSON.stringify((await byHash()).errors)).toContain('PersistedQueryNotFound');
    const registered = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, extensions }),
    });
    expect(await registered.json()).toEqual({ data: { __typename: 'Query' } });
    expect(await byHash()).toEqual({ data: { __typename: 'Query' } });
  });

  it('answers a persisted query whose hash is not of its text, or of another version, as the client’s fault', async () => {
    const query = '{ __typename }';
    const hash = createHash('sha256').update(query).digest('hex');
    const errorsLogged = () =>
      platform!.apps.logs('gateway').filter((line) => line.includes('"level":50')).length;
    const before = errorsLogged();
    for (const persistedQuery of [
      { version: 1, sha256Hash: hash.toUpperCase() },
      { version: 1, sha256Hash: createHash('sha256').update('{ me { id } }').digest('hex') },
      { version: 2, sha256Hash: hash },
      'x',
    ]) {
      const response = await fetch(`${gateway}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, extensions: { persistedQuery } }),
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect(body.errors.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
    }
    // Nothing the client got wrong is logged as a server error.
    expect(errorsLogged()).toBe(before);
  });

  it('refuses a GET without a preflight-forcing header (CSRF prevention)', async () => {
    const response = await fetch(
      `${gateway}/graphql?query=${encodeURIComponent('{ __typename }')}`,
    );
    expect(response.status).toBe(400);
  });

  it('refuses a cursor outside what any row can have with BAD_USER_INPUT, not a server error', async () => {
    const after = Buffer.from(
      '-271821-04-20T00:00:00.000Z|5b0e9f1c-0000-4000-8000-000000000001',
    ).toString('base64url');
    const response = await graphql(
      gateway,
      'query ($after: String) { me { notifications(first: 5, after: $after) { totalCount } } }',
      { token: platform!.admin.token, variables: { after } },
    );
    expect(response.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'after',
    });
  });

  it('refuses a null @include / @skip condition, and a $representations an entity fetch needs, as the client’s fault (they were 500s)', async () => {
    const token = platform!.admin.token;
    for (const [query, variables] of [
      ['query ($i: Boolean = true) { me @include(if: $i) { id } }', { i: null }],
      ['query ($s: Boolean = false) { me { id roles @skip(if: $s) { scope } } }', { s: null }],
      [
        'query ($representations: String) { me { id permissions(scope: $representations) } }',
        { representations: 'x' },
      ],
    ] as const) {
      const { status, body } = await post(gateway, query, variables, token);
      expect(status, query).toBe(400);
      expect(body.errors?.map((error) => error.extensions?.['code'])).toEqual(['BAD_USER_INPUT']);
      expect(body.data).toBeUndefined();
    }
    // Given a value, the same operations are answered.
    const { status, body } = await post(
      gateway,
      'query ($s: Boolean = false) { me { id roles @skip(if: $s) { scope } } }',
      { s: true },
      token,
    );
    expect(status).toBe(200);
    expect(body).toEqual({ data: { me: { id: platform!.admin.id } } });
  });

  it('ends the least recently used session once a user signs in more often than the limit', async () => {
    const first = await signUp(gateway, 'busy@example.com');
    const later = [];
    for (let n = 0; n < SESSIONS_PER_USER; n++)
      later.push(await signIn(gateway, 'busy@example.com', 'correct horse battery'));
    const sessions = await graphql<{ mySessions: { id: string }[] }>(
      gateway,
      '{ mySessions { id } }',
      {
        token: later.at(-1)!.token,
      },
    );
    expect(sessions.data?.mySessions).toHaveLength(SESSIONS_PER_USER);
    const { status, body } = await post(gateway, '{ me { id } }', undefined, first.token);
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions).toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'SESSION_ENDED',
    });
  });

  it.each([
    [
      'several operations and no operationName',
      { query: 'query A { __typename } query B { __typename }' },
    ],
    ['an operationName naming none', { query: '{ __typename }', operationName: 'Z' }],
    ['a subscription over HTTP', { query: 'subscription { notificationAdded { id } }' }],
    [
      'a variable nested 50,000 levels deep',
      // Written out by hand: JSON.stringify itself would run out of stack here.
      `{"query":"query ($d: String) { __typename }","variables":{"d":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`,
    ],
  ])('answers %s with BAD_USER_INPUT and 400, never a server error', async (_what, body) => {
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    expect(response.status).toBe(400);
    const answer = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(answer.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
  it('tells a client whose operationName is empty that it names no operation', async () => {
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query A { __typename }', operationName: '' }),
    });
    expect(response.status).toBe(400);
    const answer = (await response.json()) as {
      errors?: { message: string; extensions?: Record<string, unknown> }[];
    };
    expect(answer.errors?.[0]).toMatchObject({
      message: expect.stringContaining('names no operation') as unknown,
      extensions: { code: 'BAD_USER_INPUT', field: 'operationName' },
    });
  });

  it('refuses a NUL written as an escape in a literal, anonymously too, with BAD_USER_INPUT', async () => {
    for (const query of [
      'mutation { login(email: "a\\u0000@x.com", password: "12345678") { accessToken } }',
      'mutation { requestPasswordReset(email: "a\\u0000@x.com") }',
    ]) {
      const { status, body } = await post(gateway, query);
      expect(status).toBe(400);
      expect(body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'query',
      });
    }
  });

  it('answers a body that is not JSON, or over 1 MiB, as any request error: 4xx with errors and BAD_USER_INPUT', async () => {
    const raw = async (body: string | Buffer) => {
      const response = await fetch(`${gateway}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      return { status: response.status, body: await response.json() };
    };
    for (const text of ['{oops', '\uFEFF{"query":"{ __typename }"}'])
      expect(await raw(text)).toEqual({
        status: 400,
        body: {
          errors: [
            { message: 'request body is not valid JSON', extensions: { code: 'BAD_USER_INPUT' } },
          ],
        },
      });
    const tooLarge = Buffer.from(
      JSON.stringify({ query: `{ __typename } #${'x'.repeat(1 << 20)}` }),
    );
    expect(await raw(tooLarge)).toEqual({
      status: 413,
      body: {
        errors: [{ message: 'request body too large', extensions: { code: 'BAD_USER_INPUT' } }],
      },
    });
  });

  it('refuses a number beyond a double and a variable nested 5,000 deep with BAD_USER_INPUT, not a server error', async () => {
    const send = (data: string) =>
      `mutation ${data.startsWith('$') ? '($d: JSON) ' : ''}{ sendNotification(input: { userId: "u", type: "note", title: "t", body: "b", data: ${data} }) { id } }`;
    const literal = await post(gateway, send('{ k: 1e400 }'));
    expect(literal.status).toBe(400);
    expect(literal.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    // Written out by hand: JSON.stringify itself may run out of stack on it.
    const variable = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"query":${JSON.stringify(send('$d'))},"variables":{"d":${'['.repeat(5_000)}1${']'.repeat(5_000)}}}`,
    });
    expect(variable.status).toBe(400);
    const answer = (await variable.json()) as { errors?: { extensions?: unknown }[] };
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('refuses an operation nested thousands deep with QUERY_TOO_COMPLEX naming the limit, not a parser stack overflow', async () => {
    for (const query of [
      `{${'me{'.repeat(3_000)}id${'}'.repeat(3_001)}`,
      `{ hasPermission(permission: ${'['.repeat(3_000)}"x"${']'.repeat(3_000)}) }`,
      // Valid at any depth and adding no field: only the nesting limit stops it before planning.
      `{${'... on Query {'.repeat(1_500)} __typename ${'}'.repeat(1_500)}}`,
    ]) {
      const { status, body } = await post(gateway, query);
      expect(status).toBe(400);
      expect(body.errors?.[0]?.extensions).toMatchObject({
        code: 'QUERY_TOO_COMPLEX',
        reason: 'NESTING',
        limit: 128,
      });
      expect(body.errors?.[0]?.message).not.toMatch(/stack/i);
    }
  });
});
