import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppName } from '@platform/config';
import { eventually } from '@platform/testing';
import { codeOf, signUp, type GraphQLResponse, type SignedIn } from './graphql.client';
import { connectLive } from './live.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

/** `notifications(first: 100) { edges { node { recipient { ... } } } }`, `levels` deep. */
function notificationChain(levels: number): string {
  let inner = 'id';
  for (let level = 0; level < levels; level++)
    inner = `notifications(first: 100) { edges { node { recipient { ${inner} } } } }`;
  return inner;
}

/** The reported operation: five levels of 100 notifications. */
const REPORTED = `{ me { ${notificationChain(5)} } }`;
const PAGE = '{ me { notifications(first: 20) { edges { node { id } } } } }';
// 100 notifications for one point each, and one for the root field.
const HUNDRED = '{ me { notifications(first: 100) { edges { node { id } } } } }';
const SUBGRAPHS: AppName[] = ['users-subgraph', 'rbac-subgraph', 'notifications-subgraph'];
/** 170 fields no type has, named after `n`: a new invalid selection of about 1,000 characters. */
const unknownFields = (n: number) => Array.from({ length: 170 }, (_, i) => `f${n}x${i}`).join(' ');

interface HttpAnswer<T> {
  status: number;
  headers: Headers;
  body: GraphQLResponse<T>;
  ms: number;
}

describe('operation limits: depth, fields and cost checked before planning, and a budget per user', () => {
  let platform: Platform | undefined;
  let gateway: string;

  beforeAll(async () => {
    platform = await startPlatform({
      // A budget small enough to use up in a few requests: 250 points, 1 a second back.
      gateway: { REQUEST_BUDGET_PER_SECOND: '1', REQUEST_BUDGET_BURST: '250' },
      // Every operation a subgraph serves is logged with its correlation id.
      ...Object.fromEntries(SUBGRAPHS.map((name) => [name, { LOG_LEVEL: 'info' }])),
    });
    ({ gateway } = platform);
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  /** Posts an operation and keeps the HTTP status and headers, which the client helper drops. */
  async function post<T = Record<string, unknown>>(
    query: string,
    options: { token?: string; correlationId?: string } = {},
  ): Promise<HttpAnswer<T>> {
    const started = performance.now();
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.correlationId ? { 'x-correlation-id': options.correlationId } : {}),
      },
      body: JSON.stringify({ query }),
    });
    const body = (await response.json()) as GraphQLResponse<T>;
    return {
      status: response.status,
      headers: response.headers,
      body,
      ms: performance.now() - started,
    };
  }

  /**
   * Proves that no subgraph saw the request with `correlationId`: a later request that every
   * subgraph serves is waited for in each one's log (logs arrive in order), and the refused
   * request's id is in none of them.
   */
  async function expectNoSubgraphSaw(correlationId: string, who: SignedIn): Promise<void> {
    const control = randomUUID();
    const answer = await post(
      '{ me { id notifications(first: 1) { totalCount } } hasPermission(permission: "users:read") }',
      { token: who.token, correlationId: control },
    );
    expect(answer.body.errors).toBeUndefined();
    for (const name of SUBGRAPHS) {
      const logs = () => platform!.apps.logs(name).join('\n');
      await eventually(() => expect(logs()).toContain(control));
      expect(logs()).not.toContain(correlationId);
    }
  }

  it('refuses the reported five-level query with 400, naming the limit and the measured value, before any subgraph is called', async () => {
    const newcomer = await signUp(gateway, 'newcomer@example.com');
    const correlationId = randomUUID();
    const answer = await post(REPORTED, { token: newcomer.token, correlationId });
    expect(answer.status).toBe(400);
    expect(answer.body.data).toBeUndefined();
    expect(answer.body.errors).toEqual([
      {
        message:
          'Estimated number of objects (list sizes multiplied down the tree) is 10,101,010,100, above the limit of 10,000',
        extensions: {
          code: 'QUERY_TOO_COMPLEX',
          reason: 'NODES',
          limit: 10_000,
          measured: 10_101_010_100,
        },
      },
    ]);
    expect(answer.ms).toBeLessThan(1_000);
    await expectNoSubgraphSaw(correlationId, newcomer);
  });

  it('refuses a mutation above the limits without running it', async () => {
    const renamer = await signUp(gateway, 'renamer@example.com');
    const answer = await post(
      `mutation { updateProfile(input: { displayName: "changed" }) { ${notificationChain(3)} } }`,
      { token: renamer.token },
    );
    expect(answer.status).toBe(400);
    expect(codeOf(answer.body)).toBe('QUERY_TOO_COMPLEX');
    const me = await post<{ me: { displayName: string } }>('{ me { displayName } }', {
      token: renamer.token,
    });
    expect(me.body.data?.me.displayName).toBe('renamer');
  });

  it('refuses 500 aliases of hasPermission with 400, before any subgraph is called', async () => {
    const aliaser = await signUp(gateway, 'aliaser@example.com');
    const aliases = Array.from(
      { length: 500 },
      (_, n) => `p${n}: hasPermission(permission: "users:read")`,
    );
    const correlationId = randomUUID();
    const answer = await post(`{ ${aliases.join(' ')} }`, { token: aliaser.token, correlationId });
    expect(answer.status).toBe(400);
    expect(answer.body.errors?.[0]?.extensions).toEqual({
      code: 'QUERY_TOO_COMPLEX',
      reason: 'ROOT_FIELDS',
      limit: 20,
      measured: 500,
    });
    expect(answer.body.errors?.[0]?.message).toBe(
      'Number of root fields is 500, above the limit of 20',
    );
    // Validating that new text (22,500 characters) took the aliaser's whole small budget.
    await expectNoSubgraphSaw(correlationId, await signUp(gateway, 'control@example.com'));
  });

  it('refuses a page size no Int can hold as bad input, not as too complex, before any subgraph is called', async () => {
    const asker = await signUp(gateway, 'asker@example.com');
    for (const first of [2 ** 31, 1e10]) {
      const correlationId = randomUUID();
      const response = await fetch(`${gateway}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${asker.token}`,
          'x-correlation-id': correlationId,
        },
        body: JSON.stringify({
          query: 'query ($first: Int) { me { notifications(first: $first) { totalCount } } }',
          variables: { first },
        }),
      });
      const body = (await response.json()) as GraphQLResponse<unknown>;
      expect(response.status).toBe(400);
      expect(codeOf(body)).toBe('BAD_USER_INPUT');
      await expectNoSubgraphSaw(correlationId, asker);
    }
  });

  it('serves a page of notifications', async () => {
    const reader = await signUp(gateway, 'reader@example.com');
    const answer = await post<{ me: { notifications: { edges: { node: { id: string } }[] } } }>(
      PAGE,
      { token: reader.token },
    );
    expect(answer.status).toBe(200);
    expect(answer.body.errors).toBeUndefined();
    expect(Array.isArray(answer.body.data?.me.notifications.edges)).toBe(true);
  });

  it('refuses a text of more than 15,000 tokens once the parser reaches them, over HTTP and WebSocket, with BAD_USER_INPUT', async () => {
    // 2,300 fragments of 7 tokens each: 16,100 tokens in 57 KB (below the WebSocket frame limit).
    const fragments = Array.from({ length: 2_300 }, (_, n) => `fragment a${n} on User{id}`);
    const tooLong = fragments.join(' ');
    // Each long text from a user of its own: its charge (57 KB, more than the whole small
    // budget) is admitted only from a full bucket, and empties it.
    const poster = await signUp(gateway, 'tokens-poster@example.com');
    const http = await post(`{ __typename } ${tooLong}`, { token: poster.token });
    expect(http.status).toBe(400);
    expect(http.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/15000 tokens/) as string,
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ]);

    const [listener, other] = [
      await signUp(gateway, 'tokens-listener@example.com'),
      await signUp(gateway, 'syntax-listener@example.com'),
    ];
    const client = connectLive(gateway, listener.token);
    const otherClient = connectLive(gateway, other.token);
    try {
      // Any syntax error over WebSocket carries the contract's code, as over HTTP.
      const broken = otherClient.subscribe('subscription {');
      await eventually(() => expect(broken.errors).toHaveLength(1));
      expect(broken.errors[0]).toEqual([
        expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT' } }),
      ]);
      const long = client.subscribe(`subscription { notificationAdded { id } } ${tooLong}`);
      await eventually(() => expect(long.errors).toHaveLength(1));
      expect(long.errors[0]).toEqual([
        expect.objectContaining({
          message: expect.stringMatching(/15000 tokens/) as string,
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      ]);
    } finally {
      await Promise.all([client.dispose(), otherClient.dispose()]);
    }
  });

  it('refuses more than 100 fragment spreads with QUERY_TOO_COMPLEX before validating them (a cycle of 100 fragments was a 500), over HTTP and WebSocket', async () => {
    // A user per text: each new text's charge (3-4 KB: over 100 points) is most of the small
    // budget.
    const [user, cycler, listener] = [
      await signUp(gateway, 'fragments@example.com'),
      await signUp(gateway, 'cycler@example.com'),
      await signUp(gateway, 'fragments-listener@example.com'),
    ];
    const spreads = (count: number) =>
      Array.from({ length: count }, (_, n) => `...f${n}`).join(' ');
    const fragments = (count: number, body: (n: number) => string) =>
      Array.from({ length: count }, (_, n) => `fragment f${n} on User { ${body(n)} }`).join(' ');
    // A hundred spreads are served.
    const hundred = await post<{ me: { id: string } }>(
      `{ me { ${spreads(100)} } } ${fragments(100, () => 'id')}`,
      { token: user.token },
    );
    expect(hundred.status).toBe(200);
    expect(hundred.body.data?.me.id).toBe(user.id);
    // 100 fragments spreading the next two, in a cycle: validating it overflowed the stack.
    const cycle = await post(
      `{ me { ...f0 } } ${fragments(100, (n) => `...f${(n + 1) % 100} ...f${(n + 2) % 100} id`)}`,
      { token: cycler.token },
    );
    expect(cycle.status).toBe(400);
    expect(cycle.body.errors).toEqual([
      {
        message: 'Number of fragment spreads in the document is 201, above the limit of 100',
        extensions: { code: 'QUERY_TOO_COMPLEX', reason: 'FRAGMENTS', limit: 100, measured: 201 },
      },
    ]);

    const client = connectLive(gateway, listener.token);
    try {
      const many = client.subscribe(
        `subscription { notificationAdded { recipient { ...f0 } } } ${fragments(101, (n) => (n < 100 ? `...f${n + 1}` : 'id'))}`,
      );
      await eventually(() => expect(many.errors).toHaveLength(1));
      expect(many.errors[0]).toEqual([
        {
          message: 'Number of fragment spreads in the document is 101, above the limit of 100',
          extensions: { code: 'QUERY_TOO_COMPLEX', reason: 'FRAGMENTS', limit: 100, measured: 101 },
        },
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('refuses a subscription above the limits with the same error', async () => {
    const listener = await signUp(gateway, 'listener@example.com');
    const client = connectLive(gateway, listener.token);
    try {
      const subscription = client.subscribe(
        `subscription { notificationAdded { recipient { ${notificationChain(3)} } } }`,
      );
      await eventually(() => expect(subscription.errors).toHaveLength(1));
      expect(subscription.errors[0]).toEqual([
        {
          message:
            'Estimated number of objects (list sizes multiplied down the tree) is 1,010,100, above the limit of 10,000',
          extensions: {
            code: 'QUERY_TOO_COMPLEX',
            reason: 'NODES',
            limit: 10_000,
            measured: 1_010_100,
          },
        },
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('refuses a subscription nested 200 deep with QUERY_TOO_COMPLEX, as over HTTP, and keeps serving', async () => {
    const listener = await signUp(gateway, 'deep-listener@example.com');
    const client = connectLive(gateway, listener.token);
    try {
      const deep = client.subscribe(
        `subscription {${'... on Subscription {'.repeat(200)} notificationAdded { id } ${'}'.repeat(200)}}`,
      );
      await eventually(() => expect(deep.errors).toHaveLength(1));
      expect(deep.errors[0]).toEqual([
        {
          message: 'Bracket nesting of the operation text is 202, above the limit of 128',
          extensions: { code: 'QUERY_TOO_COMPLEX', reason: 'NESTING', limit: 128, measured: 202 },
        },
      ]);
      // The connection is still usable.
      const fine = client.subscribe('subscription { notificationAdded { id } }');
      const sender = await signUp(gateway, 'deep-sender@example.com');
      expect(sender.token).toBeTruthy();
      await eventually(() => expect(fine.errors).toHaveLength(0));
    } finally {
      await client.dispose();
    }
  });

  it('refuses a user who used up their budget with 429 and retryAfter, while another user is served', async () => {
    const [heavy, other] = [
      await signUp(gateway, 'heavy@example.com'),
      await signUp(gateway, 'other@example.com'),
    ];
    // 101 points each from a budget of 250 that comes back at 1 point a second.
    expect((await post(HUNDRED, { token: heavy.token })).status).toBe(200);
    expect((await post(HUNDRED, { token: heavy.token })).status).toBe(200);
    const refused = await post(HUNDRED, { token: heavy.token });
    expect(refused.status).toBe(429);
    expect(codeOf(refused.body)).toBe('RATE_LIMITED');
    const retryAfter = refused.body.errors?.[0]?.extensions?.['retryAfter'];
    expect(retryAfter).toBeGreaterThan(0);
    expect(refused.headers.get('retry-after')).toBe(String(retryAfter));

    const served = await post(HUNDRED, { token: other.token });
    expect(served.status).toBe(200);
    expect(served.body.errors).toBeUndefined();
  });

  it('charges texts not seen before: distinct invalid documents (syntax or validation errors) are refused with 429 unvalidated once the budget is used up', async () => {
    const [sender, other] = [
      await signUp(gateway, 'invalid-texts@example.com'),
      await signUp(gateway, 'bystander@example.com'),
    ];
    // Each text is new and fails validation (no such fields) or parsing (a brace left open),
    // so it never becomes an operation to charge: about 1,000 characters, 32 points each, from
    // the budget of 250.
    const answers: HttpAnswer<unknown>[] = [];
    for (let n = 0; n < 12; n++) {
      const text = `{ me { ${unknownFields(n)} } ${n % 2 === 0 ? '}' : ''}`;
      answers.push(await post(text, { token: sender.token }));
    }
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(codeOf(answers[0]!.body)).toBe('BAD_USER_INPUT');
    const refused = answers.find((answer) => answer.status === 429);
    expect(refused, JSON.stringify(statuses)).toBeDefined();
    expect(statuses.slice(statuses.indexOf(429))).toEqual(
      statuses.slice(statuses.indexOf(429)).map(() => 429),
    );
    expect(refused!.body.errors).toHaveLength(1);
    expect(codeOf(refused!.body)).toBe('RATE_LIMITED');
    const retryAfter = refused!.body.errors?.[0]?.extensions?.['retryAfter'];
    expect(retryAfter).toBeGreaterThan(0);
    expect(refused!.headers.get('retry-after')).toBe(String(retryAfter));
    // The same budget: the sender's valid operations wait too; another user is served.
    expect((await post(PAGE, { token: sender.token })).status).toBe(429);
    const served = await post(PAGE, { token: other.token });
    expect(served.status).toBe(200);
    expect(served.body.errors).toBeUndefined();
  });

  it('charges a subscribe message’s new text the same way over WebSocket', async () => {
    const listener = await signUp(gateway, 'invalid-subscriber@example.com');
    const client = connectLive(gateway, listener.token);
    try {
      const refusals: { message?: string; extensions?: Record<string, unknown> }[] = [];
      for (let n = 0; n < 12; n++) {
        const subscription = client.subscribe(
          `subscription { notificationAdded { ${unknownFields(n)} } }`,
        );
        await eventually(() => expect(subscription.errors).toHaveLength(1));
        const [error] = subscription.errors[0] as (typeof refusals)[number][];
        refusals.push(error ?? {});
      }
      const codes = refusals.map((error) => error.extensions?.['code']);
      expect(codes.slice(0, 5)).toEqual(codes.slice(0, 5).map(() => 'BAD_USER_INPUT'));
      const refused = refusals.find((error) => error.extensions?.['code'] === 'RATE_LIMITED');
      expect(refused, JSON.stringify(codes)).toEqual({
        message: 'Request budget used up; try again later',
        extensions: { code: 'RATE_LIMITED', retryAfter: expect.any(Number) as number },
      });
    } finally {
      await client.dispose();
    }
  });

  it('charges a permissions(scope:) per alias: 100 scopes at once are served, the same request again is refused', async () => {
    const { token, id } = await signUp(gateway, 'scopes@example.com');
    const scopes = Array.from(
      { length: 100 },
      (_, i) => `s${i}: permissions(scope: "tenant:${i}")`,
    ).join(' ');
    // 101 points each (the root field, and one per scope) from the budget of 250, and the
    // text's validation once (3,500 characters: 110 points).
    const first = await post(`{ me { ${scopes} } }`, { token });
    expect(first.status).toBe(200);
    expect(first.body.errors).toBeUndefined();
    const refused = await post(`{ me { ${scopes} } }`, { token });
    expect(refused.status).toBe(429);
    expect(codeOf(refused.body)).toBe('RATE_LIMITED');
    // Scopes the user holds nothing in share the global scope's cached grant: asking for 120
    // of them left one entry in Redis, not 120.
    const redis = new Redis(platform!.run.redisUrl);
    try {
      const grants = await redis.keys(`${platform!.run.redisKeyPrefix}rbac:grant:${id}:*`);
      expect(grants).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  });
});
