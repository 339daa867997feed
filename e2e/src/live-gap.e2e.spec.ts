import { randomUUID } from 'node:crypto';
import type { FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createMessageBroker, type MessageBroker } from '@platform/messaging';
import { createTcpProxy, eventually, type TcpProxy } from '@platform/testing';
import { graphql, signUp } from './graphql.client';
import { connectLive, type LiveClient } from './live.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

// Only the notifications subgraph's RabbitMQ connection drops, briefly (the others, and the
// notification service publishing `notification.created`, keep theirs): its live queue is
// gone until it reconnects, and what is published meanwhile never reaches it. A subscriber
// must then be told to catch up (its connection closed with 1012, docs/notifications.md),
// never left open and silently short. The subgraph reaches RabbitMQ through a TCP proxy this
// test cuts, as `ss -K` would; the machine's RabbitMQ is never touched.

const SEND = `mutation ($input: SendNotificationInput!) { sendNotification(input: $input) { id } }`;
const ADDED = 'subscription { notificationAdded { id } }';
const PAGE = `query ($after: String) {
  me { notifications(first: 50, after: $after) {
    edges { node { id } } pageInfo { hasNextPage endCursor } } } }`;
const SENDERS = 4;
const SERVICE_RESTART = 1012;

interface Page {
  me: {
    notifications: {
      edges: { node: { id: string } }[];
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
    };
  };
}

const idOf = (result: FormattedExecutionResult) =>
  (result.data as { notificationAdded: { id: string } }).notificationAdded.id;

describe('a brief drop of the notifications subgraph’s RabbitMQ connection', () => {
  let platform: Platform | undefined;
  let proxy: TcpProxy;
  let probe: MessageBroker | undefined;
  /** Every `notification.created` the broker routed, by notification id: when it was seen. */
  const routed = new Map<string, number>();
  let onRouted: () => void = () => undefined;
  const clients: LiveClient[] = [];

  beforeAll(async () => {
    const target = new URL(process.env['TEST_RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672');
    proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
    platform = await startPlatform((run) => {
      const proxied = new URL(run.rabbitmqUrl);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      return { 'notifications-subgraph': { RABBITMQ_URL: proxied.toString() } };
    });
    // What the broker routes, seen on a connection of the test's own (not through the proxy).
    probe = await createMessageBroker({
      url: platform.run.rabbitmqUrl,
      exchange: platform.run.exchange,
      logger: createLogger({ name: 'live-gap-probe', level: 'silent' }),
    });
    await probe.consume({
      queue: `${platform.run.exchange}.live-gap-probe.${randomUUID()}`,
      events: ['notification.created'],
      ephemeral: true,
      handle: ({ payload }) => {
        routed.set(payload.id, performance.now());
        onRouted();
        return Promise.resolve();
      },
    });
  });

  afterAll(async () => {
    for (const client of clients) await client.dispose();
    await probe?.close();
    await stopPlatform(platform);
    await proxy?.close();
  });

  /** Resolves once `count` notifications the broker routed were seen after `since`. */
  function routedSince(since: number, count: number, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fewer than ${count} notifications routed`)),
        timeoutMs,
      );
      onRouted = () => {
        if ([...routed.values()].filter((at) => at > since).length < count) return;
        clearTimeout(timer);
        onRouted = () => undefined;
        resolve();
      };
      onRouted();
    });
  }

  async function subgraphSubscriptions(): Promise<number> {
    const response = await fetch(`${platform!.apps.httpUrl('notifications-subgraph')}/health`);
    return ((await response.json()) as { subscriptions: number }).subscriptions;
  }

  it('closes the subscriber with 1012, and the documented catch-up finds every notification', async () => {
    const { gateway, admin, run } = platform!;
    const user = await signUp(gateway, `gap-${run.id}@example.com`);
    const send = async (title: string) => {
      const response = await graphql<{ sendNotification: { id: string } }>(gateway, SEND, {
        token: admin.token,
        variables: { input: { userId: user.id, type: 'note', title, body: '' } },
      });
      if (!response.data) throw new Error(JSON.stringify(response.errors));
      return response.data.sendNotification.id;
    };

    const first = connectLive(gateway, user.token);
    clients.push(first);
    const firstLive = first.subscribe(ADDED);
    await eventually(async () => expect(await subgraphSubscriptions()).toBe(1));

    // Admins send steadily (acknowledged = in the inbox).
    const acknowledged: string[] = [];
    let sending = true;
    const senders = Array.from({ length: SENDERS }, async (_, sender) => {
      for (let n = 0; sending; n++) acknowledged.push(await send(`gap ${sender}.${n}`));
    });

    await firstLive.next(20, 20_000);
    proxy.cut();
    const cutAt = performance.now();
    // Notifications routed while the subgraph's queue is gone with its connection.
    await routedSince(cutAt, 20);
    proxy.restore();
    const restoredAt = performance.now();

    // The subgraph reconnects. Now the subscriber is closed (or, without the fix, the
    // connection just goes on with newer notifications).
    const closedOrGoingOn = await Promise.race([
      first.closed,
      firstLive
        .received((result) => (routed.get(idOf(result)) ?? 0) > restoredAt, 20_000)
        .then((result) => ({ pushedAfterTheRestore: idOf(result) }))
        .catch(() => undefined),
    ]);
    sending = false;
    await Promise.all(senders);
    // Whatever is on its way arrives, unless the connection closed.
    const closed = await Promise.race([
      first.closed,
      eventually(() => {
        const live = new Set(firstLive.results.map(idOf));
        const missing = acknowledged.filter((id) => !live.has(id));
        if (missing.length > 0) throw new Error(`${missing.length} not pushed`);
      }, 10_000).catch(() => undefined),
    ]);

    const liveOnFirst = firstLive.results.map(idOf);
    expect(new Set(liveOnFirst).size, 'pushed twice').toBe(liveOnFirst.length);
    const lost = acknowledged.filter((id) => !liveOnFirst.includes(id));
    // The cut did lose notifications on their way to the subgraph.
    const lostInTheGap = lost.filter((id) => {
      const at = routed.get(id);
      return at !== undefined && at > cutAt && at < restoredAt;
    });
    expect(lostInTheGap.length).toBeGreaterThan(0);
    if (!closed)
      expect(
        lost,
        `never pushed live, and the connection stays open (no cue to catch up): ${JSON.stringify(closedOrGoingOn)}`,
      ).toEqual([]);
    expect(closed?.code).toBe(SERVICE_RESTART);
    // Not a silent `complete`, nor a GraphQL error: the close itself (graphql-ws hands it to
    // the sink of a client that does not retry; one that does reconnects on 1012).
    expect(firstLive.completed).toBe(false);
    expect(firstLive.errors.map((error) => (error as { code?: unknown }).code)).toEqual([
      SERVICE_RESTART,
    ]);

    // The client reconnects and catches up as documented: subscribe, page at once, and page
    // again once the subscription delivers its first event.
    const second = connectLive(gateway, user.token);
    clients.push(second);
    const secondLive = second.subscribe(ADDED);
    const caughtUp = new Set<string>();
    const page = async () => {
      let after: string | null = null;
      for (;;) {
        const response: { data?: Page | null; errors?: unknown } = await graphql<Page>(
          gateway,
          PAGE,
          { token: user.token, variables: { after } },
        );
        const notifications = response.data?.me.notifications;
        if (!notifications) throw new Error(JSON.stringify(response.errors));
        for (const edge of notifications.edges) caughtUp.add(edge.node.id);
        if (!notifications.pageInfo.hasNextPage) return;
        after = notifications.pageInfo.endCursor;
      }
    };
    await page();
    // (graphql-ws does not say when a subscription is live: its first event proves it.)
    await eventually(async () => {
      const marker = await send('after the reconnect');
      acknowledged.push(marker);
      await secondLive.received((result) => idOf(result) === marker, 2_000);
    }, 20_000);
    await page();

    const seen = new Set([...liveOnFirst, ...secondLive.results.map(idOf), ...caughtUp]);
    expect(acknowledged.filter((id) => !seen.has(id))).toEqual([]);
    // The inbox had them all along (what the catch-up relies on).
    expect(acknowledged.filter((id) => !caughtUp.has(id))).toEqual([]);
  });
});
