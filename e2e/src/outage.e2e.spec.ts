import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_NAMES } from '@platform/apps';
import { createTcpProxy, eventually, type TcpProxy } from '@platform/testing';
import { signIn, signUp, type SignedIn } from './graphql.client';
import { ADMIN, startPlatform, stopPlatform, type Platform } from './platform.harness';

/**
 * Fail closed, recover by itself (issue 12 item 2; docs/resilience.md): every app reaches
 * Redis and PostgreSQL through a TCP proxy this test cuts for a few seconds, as a network
 * partition or a failover would. During a cut every answer that needs the dependency is
 * HTTP 503 SERVICE_UNAVAILABLE with retryAfter and a Retry-After header, naming nothing
 * internal, and `/ready` is 503 naming it; once it is back, everything works again within
 * 10 s and no process was restarted. The machine's servers are never touched.
 */

const redisTarget = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const databaseTarget = new URL(
  process.env['TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
);
const OUTAGE_MESSAGE = 'Service temporarily unavailable; try again shortly';
/** What no answer may show a client: driver messages, addresses, products, stack frames. */
const INTERNALS =
  /redis|postgres|prisma|ECONN|EPIPE|socket|stream|127\.0\.0\.1|offline|timed out|terminated|\bat \w+ \(/i;

interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
}

async function post(
  gateway: string,
  query: string,
  options: { token?: string; variables?: Record<string, unknown> } = {},
): Promise<Answer> {
  const response = await fetch(`${gateway}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  const text = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    text,
    body: JSON.parse(text) as Answer['body'],
  };
}

/** HTTP 503, SERVICE_UNAVAILABLE with retryAfter and Retry-After, and nothing internal. */
function expectUnavailable(answer: Answer): void {
  expect(answer.status, answer.text).toBe(503);
  expect(answer.retryAfter).toMatch(/^\d+$/);
  expect(answer.body.errors?.length).toBeGreaterThan(0);
  for (const error of answer.body.errors ?? []) {
    expect(error.extensions?.['code'], answer.text).toBe('SERVICE_UNAVAILABLE');
    expect(error.extensions?.['retryAfter']).toEqual(expect.any(Number));
    expect(error.message).toBe(OUTAGE_MESSAGE);
  }
  expect(answer.text).not.toMatch(INTERNALS);
}

/** Opens a graphql-ws connection and resolves with how the gateway closed it. */
function connectionInit(gateway: string, token: string) {
  return new Promise<{ code: number; reason: string }>((resolve, reject) => {
    const socket = new WebSocket(
      `${gateway.replace(/^http/, 'ws')}/graphql`,
      'graphql-transport-ws',
    );
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('the gateway neither accepted nor closed the connection'));
    }, 10_000);
    socket.on('open', () =>
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
      ),
    );
    socket.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack') {
        clearTimeout(timer);
        socket.close(1000);
        resolve({ code: 0, reason: 'accepted' });
      }
    });
    socket.on('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
    socket.on('error', () => undefined);
  });
}

const ME = '{ me { id displayName } }';
const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken } }`;
const REGISTER = `mutation ($input: RegisterInput!) { register(input: $input) { user { id } } }`;
const UPDATE_PROFILE = `mutation ($name: String!) {
  updateProfile(input: { displayName: $name }) { id displayName } }`;

describe('a dependency outage, answered clearly and recovered from without a restart', () => {
  let platform: Platform | undefined;
  let gateway: string;
  let redis: TcpProxy;
  let database: TcpProxy;
  let alice: SignedIn;
  let pidsAtStart: (number | undefined)[];

  const ready = async () => {
    const response = await fetch(`${gateway}/ready`, {
      headers: { 'x-internal-token': platform!.run.internalToken },
    });
    return { status: response.status, body: (await response.json()) as { down: string[] } };
  };
  const pids = () => APP_NAMES.map((name) => platform!.apps.pid(name));

  beforeAll(async () => {
    redis = await createTcpProxy({
      host: redisTarget.hostname,
      port: Number(redisTarget.port || 6379),
    });
    database = await createTcpProxy({
      host: databaseTarget.hostname,
      port: Number(databaseTarget.port || 5432),
    });
    platform = await startPlatform((run) => {
      const databaseUrl = new URL(run.databaseUrl);
      databaseUrl.hostname = '127.0.0.1';
      databaseUrl.port = String(database.port);
      const redisUrl = new URL(run.redisUrl);
      redisUrl.hostname = '127.0.0.1';
      redisUrl.port = String(redis.port);
      const throughProxies = {
        DATABASE_URL: databaseUrl.toString(),
        REDIS_URL: redisUrl.toString(),
      };
      return Object.fromEntries(APP_NAMES.map((name) => [name, throughProxies]));
    });
    gateway = platform.gateway;
    alice = await signUp(gateway, `alice-${randomUUID()}@example.com`);
    pidsAtStart = pids();
  });

  afterAll(async () => {
    redis?.restore();
    database?.restore();
    await stopPlatform(platform);
    await redis?.close();
    await database?.close();
  });

  it('answers 503 SERVICE_UNAVAILABLE while Redis is cut off, and works again within 10 s', async () => {
    expect((await post(gateway, ME, { token: alice.token })).body.data).toMatchObject({
      me: { id: alice.id },
    });
    redis.cut();
    try {
      // A signed-in query: the token's session cannot be checked, so it is neither accepted
      // nor called invalid.
      expectUnavailable(
        await eventually(async () => {
          const answer = await post(gateway, ME, { token: alice.token });
          expect(answer.status).toBe(503);
          return answer;
        }, 5_000),
      );
      // Signing in (a public operation).
      expectUnavailable(
        await post(gateway, LOGIN, { variables: { email: ADMIN.email, password: ADMIN.password } }),
      );
      // A live connection whose token cannot be checked: closed as retryable, not 4401.
      expect(await connectionInit(gateway, alice.token)).toEqual({
        code: 1013,
        reason: 'Try again later',
      });
      // Not ready, saying why (to a caller with the internal credential).
      const notReady = await eventually(async () => {
        const answer = await ready();
        expect(answer.status).toBe(503);
        expect(answer.body.down).toEqual(expect.arrayContaining(['redis', 'auth-service: redis']));
        return answer;
      }, 5_000);
      expect(notReady.body.down).not.toContain('auth-service: postgresql');
    } finally {
      redis.restore();
    }
    const restoredAt = Date.now();
    await eventually(async () => {
      const answer = await post(gateway, ME, { token: alice.token });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.data).toMatchObject({ me: { id: alice.id } });
    }, 10_000);
    await eventually(async () => expect((await ready()).status).toBe(200), 10_000);
    expect(Date.now() - restoredAt).toBeLessThan(10_000);
    await signIn(gateway, ADMIN.email, ADMIN.password);
    expect(await connectionInit(gateway, alice.token)).toEqual({ code: 0, reason: 'accepted' });
    expect(pids()).toEqual(pidsAtStart);
  });

  it('answers 503 SERVICE_UNAVAILABLE while PostgreSQL is cut off, and works again within 10 s, each change once', async () => {
    const email = `bob-${randomUUID()}@example.com`;
    const register = () =>
      post(gateway, REGISTER, {
        variables: { input: { email, password: 'correct horse battery', displayName: 'Bob' } },
      });
    database.cut();
    try {
      expectUnavailable(
        await post(gateway, UPDATE_PROFILE, {
          token: alice.token,
          variables: { name: 'Alice Cut' },
        }),
      );
      expectUnavailable(await register());
      await eventually(async () => {
        const answer = await ready();
        expect(answer.status).toBe(503);
        expect(answer.body.down).toEqual(
          expect.arrayContaining(['user-service: postgresql', 'auth-service: postgresql']),
        );
      }, 5_000);
    } finally {
      database.restore();
    }
    const restoredAt = Date.now();
    // The same changes, retried as a client told to retry would: each takes effect once.
    const updated = await eventually(async () => {
      const answer = await post(gateway, UPDATE_PROFILE, {
        token: alice.token,
        variables: { name: 'Alice Back' },
      });
      expect(answer.status, answer.text).toBe(200);
      return answer;
    }, 10_000);
    expect(updated.body.data).toEqual({
      updateProfile: { id: alice.id, displayName: 'Alice Back' },
    });
    const registered = await register();
    expect(registered.status, registered.text).toBe(200);
    expect((await register()).body.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
    await signIn(gateway, email, 'correct horse battery');
    await eventually(async () => expect((await ready()).status).toBe(200), 10_000);
    expect(Date.now() - restoredAt).toBeLessThan(10_000);
    expect(pids()).toEqual(pidsAtStart);
  });
});
