import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_NAMES, APPS, appEnvironment, startAppProcess } from '@platform/apps';
import { composeSupergraph, loadSupergraphConfig } from '@platform/supergraph';
import { createGrpcClient } from '@platform/grpc';
import { notificationV1, userV1 } from '@platform/proto';
import {
  createTestRun,
  freePort,
  eventually,
  startApps,
  type AppCluster,
  type TestRun,
} from '@platform/testing';
import { graphql } from './graphql.client';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('the platform, every layer running as its own process', () => {
  let run: TestRun;
  let apps: AppCluster;
  let gateway: string;

  beforeAll(async () => {
    run = await createTestRun();
    apps = await startApps(run, APP_NAMES);
    gateway = apps.httpUrl('gateway');
  });

  afterAll(async () => {
    await apps?.stopAll();
    await run?.close();
  });

  const startGateway = (env: Record<string, string>, lines: string[] = []) => {
    const app = APPS.find((candidate) => candidate.name === 'gateway')!;
    return startAppProcess({
      app,
      env: {
        PATH: process.env['PATH'] ?? '',
        ...run.env,
        ...appEnvironment(app, apps.ports),
        GATEWAY_HOST: '127.0.0.1',
        ...env,
      },
      onLine: (line) => lines.push(line),
    });
  };

  const grpc = <S extends Parameters<typeof createGrpcClient>[0]>(
    definition: S,
    name: Parameters<AppCluster['grpcAddress']>[0],
    internalToken = run.internalToken,
  ) => createGrpcClient(definition, { address: apps.grpcAddress(name), internalToken });

  it('is ready, naming every subgraph and service it checked', async () => {
    const response = await fetch(`${gateway}/ready`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { checks: Record<string, string> };
    expect(body.checks).toEqual({
      'users-subgraph': 'up',
      'rbac-subgraph': 'up',
      'notifications-subgraph': 'up',
      'user-service': 'up',
      'auth-service': 'up',
      'permission-service': 'up',
      'notification-service': 'up',
      redis: 'up',
    });
    expect((await fetch(`${gateway}/health`)).status).toBe(200);
  });

  it('answers queries through the gateway; `me` is null without a token', async () => {
    const response = await graphql(gateway, '{ __typename me { id email } }');
    expect(response).toEqual({ data: { __typename: 'Query', me: null } });
  });

  it('refuses a forged token with UNAUTHENTICATED and fields that need one likewise', async () => {
    const forged = await graphql(gateway, '{ me { id } }', {
      token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.x',
    });
    expect(forged.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    const anonymous = await graphql(gateway, '{ hasPermission(permission: "users:read") }');
    expect(anonymous.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
  });

  it('shows the Apollo Sandbox landing page to a browser in development', async () => {
    const response = await fetch(`${gateway}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(await response.text()).toMatch(/sandbox/i);
  });

  it('reports a bad query as BAD_USER_INPUT without internals', async () => {
    const response = await graphql(gateway, '{ noSuchField }');
    expect(response.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT' });
  });

  it('publishes the public keys that verify access tokens', async () => {
    const jwks = (await (await fetch(`${gateway}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string; alg: string }[];
    };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys[0]).toMatchObject({ alg: 'ES256', kty: 'EC', crv: 'P-256' });
  });

  it('carries a write through gRPC, PostgreSQL, the outbox and RabbitMQ to another service, with cached reads', async () => {
    const users = grpc(userV1.UserServiceService, 'user-service');
    const notifications = grpc(notificationV1.NotificationServiceService, 'notification-service');
    const { user } = await users.createUser({ email: '  Ada@Example.COM ', displayName: 'Ada' });
    expect(user).toMatchObject({ email: 'ada@example.com', displayName: 'Ada' });

    // user.registered -> outbox -> RabbitMQ -> notification service -> welcome notification
    const page = await eventually(async () => {
      const listed = await notifications.listNotifications({
        recipientId: user!.id,
        first: 10,
        after: '',
        unreadOnly: false,
        withUnreadCount: false,
      });
      expect(listed.notifications).toHaveLength(1);
      return listed;
    });
    expect(page.notifications[0]).toMatchObject({ type: 'welcome', title: 'Welcome, Ada!' });
    expect((await notifications.countUnread({ recipientId: user!.id })).count).toBe(1);

    // Reads are served from Redis under the run's key prefix.
    expect((await users.getUser({ id: user!.id })).user?.email).toBe('ada@example.com');
    const redis = new Redis(run.redisUrl);
    try {
      // Entries are keyed by the Redis server's run (see docs/resilience.md).
      expect(await redis.keys(`${run.redisKeyPrefix}users:user:*:${user!.id}`)).toHaveLength(1);
      // A head read while the welcome notice's forget landed is not cached: read again.
      await eventually(async () => {
        expect((await notifications.countUnread({ recipientId: user!.id })).count).toBe(1);
        const [key] = await redis.keys(`${run.redisKeyPrefix}notifications:inbox:*:${user!.id}`);
        const head = key ? (JSON.parse((await redis.get(key)) ?? '{}') as unknown) : undefined;
        expect(head).toMatchObject({ total: 1, unread: 1, newest: [{ type: 'welcome' }] });
      });
    } finally {
      redis.disconnect();
    }

    await expect(
      users.createUser({ email: 'ada@example.com', displayName: 'Again' }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    users.close();
    notifications.close();
  });

  it('refuses a gRPC call without the internal credential', async () => {
    const intruder = grpc(
      userV1.UserServiceService,
      'user-service',
      'a-guess-at-the-internal-token-that-is-wrong',
    );
    await expect(
      intruder.getUser({ id: '00000000-0000-4000-8000-000000000000' }),
    ).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    intruder.close();
  });

  it('carries the caller correlation id from the gateway into the subgraph logs', async () => {
    const correlationId = `e2e-correlation-${run.id}`;
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-correlation-id': correlationId },
      body: JSON.stringify({ query: '{ hasPermission(permission: "users:read") }' }),
    });
    expect(response.headers.get('x-correlation-id')).toBe(correlationId);
    await eventually(() => {
      const line = apps.logs('rbac-subgraph').find((entry) => entry.includes(correlationId));
      expect(JSON.parse(line ?? '{}')).toMatchObject({
        msg: 'graphql request',
        errors: ['UNAUTHENTICATED'],
      });
    });
  });

  it('serves a pre-composed supergraph file (SUPERGRAPH_FILE)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supergraph-'));
    const file = join(dir, 'supergraph.graphql');
    writeFileSync(
      file,
      composeSupergraph(loadSupergraphConfig(join(REPO_ROOT, 'supergraph.yaml'))),
    );
    const port = await freePort();
    const child = startGateway({
      SUPERGRAPH_FILE: file,
      SUPERGRAPH_CONFIG: join(dir, 'missing.yaml'),
      GATEWAY_PORT: String(port),
    });
    try {
      const answer = await eventually(
        () => graphql(`http://127.0.0.1:${port}`, '{ me { id } }'),
        30_000,
      );
      expect(answer).toEqual({ data: { me: null } });
    } finally {
      await child.stop();
    }
  });

  it('refuses to start when the subgraphs do not compose, naming the errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supergraph-'));
    writeFileSync(join(dir, 'a.graphql'), 'type Query { thing: String }');
    writeFileSync(join(dir, 'b.graphql'), 'type Query { thing: Int }');
    writeFileSync(
      join(dir, 'supergraph.yaml'),
      'subgraphs:\n  a:\n    routing_url: http://127.0.0.1:1/graphql\n    schema: { file: a.graphql }\n  b:\n    routing_url: http://127.0.0.1:2/graphql\n    schema: { file: b.graphql }\n',
    );
    const lines: string[] = [];
    const child = startGateway(
      { SUPERGRAPH_CONFIG: join(dir, 'supergraph.yaml'), GATEWAY_PORT: String(await freePort()) },
      lines,
    );
    const { code } = await child.exited;
    expect(code).not.toBe(0);
    expect(lines.join('\n')).toMatch(/Supergraph does not compose/);
    expect(lines.join('\n')).toMatch(/Query\.thing/);
  });

  it('is not ready while a service is down, naming it, and ready again once it is back', async () => {
    await apps.stop('permission-service');
    const down = await fetch(`${gateway}/ready`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      status: 'unavailable',
      down: ['permission-service'],
    });

    await apps.start('permission-service');
    await eventually(async () => expect((await fetch(`${gateway}/ready`)).status).toBe(200));
  });
});

describe('an app with a malformed environment', () => {
  it('exits non-zero naming every bad variable', () => {
    const bundle = fileURLToPath(new URL('../../services/user/dist/main.js', import.meta.url));
    const result = spawnSync(process.execPath, [bundle], {
      env: { PATH: process.env['PATH'], GRPC_PORT: 'not-a-port', DATABASE_URL: 'mysql://nope' },
      encoding: 'utf8',
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/GRPC_PORT:/);
    expect(result.stderr).toMatch(/DATABASE_URL: must be a URL with scheme postgres or postgresql/);
    expect(result.stderr).toMatch(/INTERNAL_TOKEN: is required/);
  });
});
