import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_NAMES } from '@platform/apps';
import { eventually } from '@platform/testing';
import { graphql, signUp } from './graphql.client';
import { connectLive, type LiveClient } from './live.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

/** One span as an OTLP/HTTP JSON export carries it, with its resource's `service.name`. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

// OTLP span kinds
const SERVER = 2;
const INTERNAL = 1;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: OtlpValue }[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: { key: string; value: OtlpValue }[];
      }[];
    }[];
  }[];
}

const valueOf = (value: OtlpValue): unknown =>
  value.stringValue ?? value.intValue ?? value.boolValue;
const attributes = (list: { key: string; value: OtlpValue }[] = []) =>
  Object.fromEntries(list.map(({ key, value }) => [key, valueOf(value)]));

/** An OTLP/HTTP receiver (JSON encoding, POST /v1/traces), like a collector's. */
async function startReceiver(): Promise<{ server: Server; url: string; spans: ReceivedSpan[] }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = String(attributes(resourceSpans.resource?.attributes)['service.name']);
        for (const scope of resourceSpans.scopeSpans ?? [])
          for (const span of scope.spans ?? [])
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind,
              attributes: attributes(span.attributes),
            });
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, spans };
}

const SEND = `mutation Send($input: SendNotificationInput!) { sendNotification(input: $input) { id } }`;
const ADDED = `subscription Live { notificationAdded { id title recipient { id email } } }`;

describe('traces: one trace per client operation, across gRPC, SQL, RabbitMQ and the live push', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let platform: Platform | undefined;
  let live: LiveClient | undefined;

  beforeAll(async () => {
    receiver = await startReceiver();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    platform = await startPlatform(Object.fromEntries(APP_NAMES.map((name) => [name, otel])));
  });

  afterAll(async () => {
    await live?.dispose();
    await stopPlatform(platform);
    await new Promise((resolve) => receiver?.server.close(resolve));
  });

  it('sendNotification to a live subscriber: gateway -> subgraph -> services -> PostgreSQL -> outbox -> RabbitMQ -> live push -> gateway -> users subgraph', async () => {
    if (!platform) throw new Error('platform not started');
    const { gateway, admin } = platform;
    const alice = await signUp(gateway, 'alice.traces@example.com');
    live = connectLive(gateway, alice.token);
    const subscription = live.subscribe(ADDED);
    // The subscription reaches the subgraph (graphql-ws sends no ack): wait for its count.
    await eventually(async () => {
      const response = await fetch(`${platform?.apps.httpUrl('notifications-subgraph')}/health`);
      expect(((await response.json()) as { subscriptions: number }).subscriptions).toBe(1);
    });

    // The client's own trace context is honoured at the gateway.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await graphql<{ sendNotification: { id: string } }>(gateway, SEND, {
      token: admin.token,
      variables: { input: { userId: alice.id, type: 'note', title: 'Traced', body: '' } },
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    const id = response.data?.sendNotification.id;
    expect(id).toBeDefined();
    const pushed = await subscription.received(
      (result) =>
        (result.data as { notificationAdded?: { id: string } } | undefined)?.notificationAdded
          ?.id === id,
    );
    expect(pushed.errors).toBeUndefined();
    expect(pushed.extensions).toBeUndefined(); // the trace context is not the client's business

    const trace = () => receiver.spans.filter((span) => span.traceId === traceId);
    const has = (service: string, kind: number, name: RegExp | string) =>
      trace().some(
        (span) =>
          span.service === service &&
          span.kind === kind &&
          (typeof name === 'string' ? span.name === name : name.test(span.name)),
      );
    const expected: [string, number, RegExp | string][] = [
      // the client's HTTP operation at the gateway and its query plan's fetch
      ['gateway', SERVER, /^POST/],
      ['gateway', CLIENT, /^POST/],
      // the notifications subgraph's HTTP request and its calls to the services
      ['notifications-subgraph', SERVER, /^POST/],
      ['notifications-subgraph', CLIENT, /PermissionService\/CheckPermission|PermissionService/],
      ['notifications-subgraph', CLIENT, /NotificationService\/SendNotification/],
      ['permission-service', SERVER, /PermissionService/],
      ['notification-service', SERVER, /NotificationService\/SendNotification/],
      // the notification service's statements (the insert and its outbox row)
      ['notification-service', CLIENT, /^(INSERT|WITH|SELECT|pg\.)/],
      // the outbox relay publishing the event, and its consumers
      ['notification-service', PRODUCER, 'notification.created publish'],
      ['notifications-subgraph', CONSUMER, /notifications-subgraph\.live\..* process$/],
      // the gateway's per-event execution, which fetches the recipient from the users subgraph
      ['gateway', INTERNAL, 'subscription event Live'],
      ['users-subgraph', SERVER, /^POST/],
    ];
    await eventually(() => {
      const missing = expected.filter(([service, kind, name]) => !has(service, kind, name));
      expect(
        missing.map(([service, kind, name]) => `${service} kind ${kind} ${String(name)}`),
        JSON.stringify(
          trace().map((span) => `${span.service} ${span.kind} ${span.name}`),
          null,
          1,
        ),
      ).toEqual([]);
    }, 20_000);

    // Nested, not merely tagged: every span but the client's root has its parent in the trace.
    await eventually(() => {
      const ids = new Set(trace().map((span) => span.spanId));
      const orphans = trace().filter(
        (span) => span.parentSpanId !== '00f067aa0ba902b7' && !ids.has(span.parentSpanId),
      );
      expect(orphans.map((span) => `${span.service} ${span.name}`)).toEqual([]);
    });
    // The consumer's span is the child of the relay's publish span.
    const publish = trace().find((span) => span.name === 'notification.created publish');
    const consumer = trace().find(
      (span) => span.service === 'notifications-subgraph' && span.kind === CONSUMER,
    );
    expect(consumer?.parentSpanId).toBe(publish?.spanId);

    // The subscribe message itself: a span at the gateway, named after the operation.
    await eventually(() => {
      const subscribe = receiver.spans.find(
        (span) =>
          span.service === 'gateway' && span.kind === SERVER && span.name === 'subscribe Live',
      );
      expect(subscribe?.attributes).toMatchObject({
        'graphql.operation.type': 'subscription',
        'graphql.operation.name': 'Live',
      });
    });
  });
});
