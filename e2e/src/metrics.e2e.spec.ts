import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_NAMES } from '@platform/apps';
import type { AppName } from '@platform/config';
import { eventually } from '@platform/testing';
import { codeOf, graphql, signUp } from './graphql.client';
import { connectLive, type LiveClient } from './live.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

// Every app's /metrics, scraped before and after the platform does things: each documented
// metric (docs/operations.md, "What to watch") exists on some app, and the ones tied to what
// happened here moved, with the labels the docs promise.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  samples: Sample[];
  /** `# TYPE` of each metric family. */
  types: Map<string, string>;
}

const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

function parse(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (name && type) types.set(name, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL))
      if (key) labels[key] = value ?? '';
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** The sum of a metric's samples whose labels include `labels`. */
function sum(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return scrape.samples
    .filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((total, sample) => total + sample.value, 0);
}

const has = (scrape: Scrape, name: string, labels: Record<string, string> = {}) =>
  scrape.samples.some(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );

interface Documented {
  name: string;
  type: string;
  labels: string[];
}

/** The metrics table of docs/operations.md ("What to watch"): name, type, labels. */
function documentedMetrics(): Documented[] {
  const docs = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const section = docs.slice(docs.indexOf('## What to watch'));
  const rows: Documented[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(cells[1] ?? '')?.[1];
    if (!name) continue;
    const labels = [...(cells[3] ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1] ?? '');
    rows.push({ name, type: cells[2] ?? '', labels });
  }
  return rows;
}

const SEND = `mutation SendNote($input: SendNotificationInput!) {
  sendNotification(input: $input) { id } }`;
const ADDED = `subscription Added { notificationAdded { id title } }`;

describe('Prometheus metrics on every app', () => {
  let platform: Platform | undefined;
  const clients: LiveClient[] = [];

  beforeAll(async () => {
    platform = await startPlatform();
  });

  afterAll(async () => {
    for (const client of clients) await client.dispose();
    await stopPlatform(platform);
  });

  async function scrape(app: AppName): Promise<Scrape> {
    const response = await fetch(platform!.apps.metricsUrl(app));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    return parse(await response.text());
  }

  async function scrapeAll(): Promise<Record<AppName, Scrape>> {
    const scrapes = await Promise.all(APP_NAMES.map(scrape));
    return Object.fromEntries(APP_NAMES.map((app, n) => [app, scrapes[n]])) as Record<
      AppName,
      Scrape
    >;
  }

  it('serves /metrics on an internal port only: not through the gateway public port', async () => {
    const response = await fetch(`${platform!.gateway}/metrics`);
    expect(response.status).toBe(404);
    const gateway = await scrape('gateway');
    // Labelled with the app; Node runtime metrics (event loop, GC, heap, CPU) included.
    expect(has(gateway, 'process_cpu_user_seconds_total', { app: 'gateway' })).toBe(true);
    expect(has(gateway, 'nodejs_eventloop_lag_p99_seconds', { app: 'gateway' })).toBe(true);
    expect(gateway.types.get('nodejs_gc_duration_seconds')).toBe('histogram');
    expect(has(await scrape('user-service'), 'nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('moves the documented metrics for a query, a refused mutation and a live notification', async () => {
    const { gateway, admin } = platform!;
    const before = await scrapeAll();

    // A query: the gateway, the users subgraph and gRPC to the user service.
    const me = await graphql(gateway, 'query Me { me { id email } }', { token: admin.token });
    expect(me.errors).toBeUndefined();

    // A mutation refused by the notifications subgraph (the new user may not send).
    const bob = await signUp(gateway, 'metrics-bob@example.com');
    const refused = await graphql(gateway, SEND, {
      token: bob.token,
      variables: { input: { userId: admin.id, type: 'note', title: 'nope', body: '' } },
    });
    expect(codeOf(refused)).toBe('FORBIDDEN');

    // A notification to a live subscriber.
    const live = connectLive(gateway, bob.token);
    clients.push(live);
    const subscription = live.subscribe(ADDED);
    const during = await eventually(async () => {
      const scraped = await scrape('gateway');
      expect(sum(scraped, 'gateway_subscriptions_active')).toBeGreaterThanOrEqual(1);
      return scraped;
    });
    expect(sum(during, 'gateway_websocket_connections')).toBeGreaterThanOrEqual(1);
    const sent = await graphql<{ sendNotification: { id: string } }>(gateway, SEND, {
      token: admin.token,
      variables: { input: { userId: bob.id, type: 'note', title: 'Hi Bob', body: '' } },
    });
    const id = sent.data?.sendNotification.id;
    expect(id).toBeDefined();
    await subscription.received(
      (result) =>
        (result.data as { notificationAdded?: { id: string } })?.notificationAdded?.id === id,
    );

    const after = await eventually(async () => {
      const scraped = await scrapeAll();
      // The welcome notification of Bob's registration went through a durable queue.
      expect(
        sum(scraped['notification-service'], 'messages_handled_total', { outcome: 'ack' }),
      ).toBeGreaterThan(
        sum(before['notification-service'], 'messages_handled_total', { outcome: 'ack' }),
      );
      return scraped;
    });
    const moved = (app: AppName, name: string, labels: Record<string, string> = {}) =>
      expect(
        sum(after[app], name, labels),
        `${app} ${name} ${JSON.stringify(labels)}`,
      ).toBeGreaterThan(sum(before[app], name, labels));

    // GraphQL RED at the gateway and in the subgraphs, by operation name, type and code.
    moved('gateway', 'graphql_operations_total', { operation: 'Me', type: 'query' });
    // The subscription, started over WebSocket, is an operation too.
    moved('gateway', 'graphql_operations_total', { operation: 'Added', type: 'subscription' });
    moved('gateway', 'graphql_operation_duration_seconds_count', {
      operation: 'Added',
      type: 'subscription',
    });
    // The gateway's dependencies, as the services report theirs.
    for (const dependency of ['redis', 'users-subgraph', 'auth-service', 'notification-service'])
      expect(sum(after.gateway, 'dependency_up', { dependency }), dependency).toBe(1);
    // ... and the subgraphs theirs (Redis and each service they call).
    for (const [app, dependency] of [
      ['users-subgraph', 'redis'],
      ['users-subgraph', 'user-service'],
      ['rbac-subgraph', 'permission-service'],
      ['notifications-subgraph', 'notification-service'],
    ] as const)
      expect(sum(after[app], 'dependency_up', { dependency }), `${app} ${dependency}`).toBe(1);
    moved('gateway', 'graphql_operation_duration_seconds_count', {
      operation: 'Me',
      type: 'query',
    });
    moved('gateway', 'graphql_operation_errors_total', {
      operation: 'SendNote',
      type: 'mutation',
      code: 'FORBIDDEN',
    });
    moved('users-subgraph', 'graphql_operations_total', { type: 'query' });
    moved('notifications-subgraph', 'graphql_operation_errors_total', { code: 'FORBIDDEN' });
    moved('notifications-subgraph', 'graphql_operation_duration_seconds_count', {
      type: 'mutation',
    });
    // Subgraph fetches from the gateway's query plans.
    moved('gateway', 'gateway_subgraph_fetches_total', { subgraph: 'users' });
    moved('gateway', 'gateway_subgraph_fetch_duration_seconds_count', {
      subgraph: 'notifications',
    });
    moved('gateway', 'gateway_subgraph_fetch_errors_total', {
      subgraph: 'notifications',
      code: 'FORBIDDEN',
    });
    // gRPC, both sides, by service, method and code.
    moved('users-subgraph', 'grpc_client_handled_total', {
      grpc_service: 'user.v1.UserService',
      grpc_code: 'OK',
    });
    moved('user-service', 'grpc_server_handled_total', {
      grpc_service: 'user.v1.UserService',
      grpc_code: 'OK',
    });
    moved('user-service', 'grpc_server_handling_seconds_count', {
      grpc_service: 'user.v1.UserService',
    });
    moved('notifications-subgraph', 'grpc_client_handling_seconds_count', {
      grpc_service: 'permission.v1.PermissionService',
    });
    moved('permission-service', 'grpc_server_handled_total', {
      grpc_service: 'permission.v1.PermissionService',
    });
    // The outbox and the consumers.
    moved('notification-service', 'outbox_events_published_total', { schema: 'notifications' });
    moved('user-service', 'outbox_events_published_total', { schema: 'users' });
    moved('notification-service', 'message_processing_duration_seconds_count');
    // The live push: the notifications subgraph's per-instance queue, labelled without its id.
    moved('notifications-subgraph', 'messages_handled_total', { outcome: 'ack' });
    expect(
      after['notifications-subgraph'].samples.find(
        (sample) => sample.name === 'messages_handled_total' && sample.labels['outcome'] === 'ack',
      )?.labels['queue'],
    ).toMatch(/\.notifications-subgraph\.live\.\*$/);
    expect(
      has(after['notification-service'], 'outbox_backlog_events', { schema: 'notifications' }),
    ).toBe(true);
    expect(
      has(after['notification-service'], 'outbox_oldest_event_age_seconds', {
        schema: 'notifications',
      }),
    ).toBe(true);
    expect(has(after['notification-service'], 'queue_dead_letter_messages')).toBe(true);
    // Caches.
    moved('gateway', 'cache_lookups_total', { cache: 'access_token' });
    moved('notifications-subgraph', 'cache_lookups_total', { cache: 'access_token' });
    moved('permission-service', 'cache_lookups_total', { cache: 'permission_local' });
    // The database pool and dependencies of every service.
    for (const service of APP_NAMES.filter((app) => app.endsWith('-service'))) {
      expect(sum(after[service], 'dependency_up', { dependency: 'postgresql' }), service).toBe(1);
      expect(sum(after[service], 'dependency_up', { dependency: 'rabbitmq' }), service).toBe(1);
      expect(sum(after[service], 'db_pool_connections'), service).toBeGreaterThanOrEqual(1);
      expect(has(after[service], 'db_pool_waiting_queries'), service).toBe(true);
    }

    // Nothing identifies a user or carries raw operation text.
    for (const app of APP_NAMES)
      for (const sample of after[app].samples)
        for (const value of Object.values(sample.labels)) {
          expect(value).not.toMatch(/@|[0-9a-f]{8}-[0-9a-f]{4}-/);
          expect(value).not.toMatch(/[{}\s]/);
        }

    // Every documented metric exists on some app, with its documented type and labels.
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThan(20);
    for (const metric of documented) {
      const where = APP_NAMES.filter((app) => after[app].types.has(metric.name));
      expect(where, `${metric.name} is on no app`).not.toEqual([]);
      const app = where[0]!;
      expect(after[app].types.get(metric.name), metric.name).toBe(metric.type);
      const samples = after[app].samples.filter((sample) =>
        [metric.name, `${metric.name}_count`].includes(sample.name),
      );
      for (const sample of samples)
        for (const label of metric.labels)
          expect(Object.keys(sample.labels), `${metric.name} label ${label}`).toContain(label);
    }
  });
});
