import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startApps, type AppCluster, type TestRun } from '@platform/testing';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { codeOf, graphql, signUp, type SignedIn } from './graphql.client';
import { connectLive, type LiveClient } from './live.client';

const SEND = `mutation ($input: SendNotificationInput!) { sendNotification(input: $input) { id } }`;
const ADDED = `subscription { notificationAdded {
  id type title read recipient { id email displayName roles { role { name } } unreadNotificationCount } } }`;
const PER_USER = 3;

interface Added {
  notificationAdded: {
    id: string;
    type: string;
    title: string;
    recipient: {
      id: string;
      email: string;
      displayName: string;
      roles: { role: { name: string } }[];
    };
  };
}

describe('live notifications: federated subscriptions through the gateway', () => {
  let platform: Platform | undefined;
  let run: TestRun;
  let apps: AppCluster;
  let gateway: string;
  let admin: SignedIn;
  const clients: LiveClient[] = [];

  beforeAll(async () => {
    platform = await startPlatform({
      gateway: {
        MAX_SUBSCRIPTIONS_PER_USER: String(PER_USER),
        SUBSCRIPTION_SESSION_CHECK_MS: '500',
      },
    });
    ({ run, apps, gateway, admin } = platform);
  });

  afterAll(async () => {
    for (const client of clients) await client.dispose();
    await stopPlatform(platform);
  });

  function live(token: string | undefined, url = gateway): LiveClient {
    const client = connectLive(url, token);
    clients.push(client);
    return client;
  }

  async function send(userId: string, title: string): Promise<string> {
    const response = await graphql<{ sendNotification: { id: string } }>(gateway, SEND, {
      token: admin.token,
      variables: { input: { userId, type: 'note', title, body: '' } },
    });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.sendNotification.id;
  }

  /** The subscriptions a notifications subgraph is serving right now (its `/health`). */
  async function subgraphSubscriptions(cluster: AppCluster = apps): Promise<number> {
    const response = await fetch(`${cluster.httpUrl('notifications-subgraph')}/health`);
    return ((await response.json()) as { subscriptions: number }).subscriptions;
  }

  /** Subscribes and waits until the subscription reaches the subgraph (graphql-ws sends no ack). */
  async function subscribed(client: LiveClient, query = ADDED, cluster: AppCluster = apps) {
    const before = await subgraphSubscriptions(cluster);
    const subscription = client.subscribe(query);
    await eventually(async () => expect(await subgraphSubscriptions(cluster)).toBe(before + 1));
    return subscription;
  }

  const idOf = (result: { data?: unknown }) => (result.data as Added).notificationAdded.id;
  const withId = (id: string) => (result: { data?: unknown }) => idOf(result) === id;

  it('pushes a sent notification to its recipient with fields from all three subgraphs, and to nobody else', async () => {
    const alice = await signUp(gateway, 'alice@example.com');
    const bob = await signUp(gateway, 'bob@example.com');
    const aliceLive = await subscribed(live(alice.token));
    const bobLive = await subscribed(live(bob.token));

    const id = await send(alice.id, 'Hello Alice');
    const result = await aliceLive.received(withId(id));
    expect(result.errors).toBeUndefined();
    expect((result.data as unknown as Added).notificationAdded).toEqual({
      id,
      type: 'note',
      title: 'Hello Alice',
      read: false,
      recipient: {
        id: alice.id,
        email: 'alice@example.com',
        displayName: 'alice',
        roles: [{ role: { name: 'user' } }],
        unreadNotificationCount: expect.any(Number) as unknown,
      },
    });
    // Bob's own next notification comes through the same queue and connection after Alice's.
    await bobLive.received(withId(await send(bob.id, 'Hello Bob')));
    expect(bobLive.results.map(idOf)).not.toContain(id);
  });

  it('shows a new user the welcome notification live, and role changes as they happen', async () => {
    // The welcome waits for the notification service, so the subscription is in place first.
    await apps.stop('notification-service');
    const carol = await signUp(gateway, 'carol@example.com');
    // Only what the users and rbac subgraphs add: a subgraph's gRPC channel to the restarted
    // service may still be reconnecting (calls fail fast for up to ~2 s) when the event comes.
    const carolLive = await subscribed(
      live(carol.token),
      'subscription { notificationAdded { id type title recipient { email roles { role { name } } } } }',
    );
    await apps.start('notification-service');
    const [welcome] = await carolLive.next(1, 15_000);
    if (welcome?.errors) throw new Error(JSON.stringify(welcome.errors));
    expect((welcome?.data as unknown as Added).notificationAdded).toMatchObject({
      type: 'welcome',
      title: 'Welcome, carol!',
    });

    const role = await graphql<{ createRole: { id: string } }>(
      gateway,
      'mutation { createRole(input: { name: "reviewer", permissions: ["users:read"] }) { id } }',
      { token: admin.token },
    );
    await graphql(gateway, 'mutation ($u: ID!, $r: ID!) { assignRole(userId: $u, roleId: $r) }', {
      token: admin.token,
      variables: { u: carol.id, r: role.data!.createRole.id },
    });
    const [, notice] = await carolLive.next(2);
    expect((notice?.data as unknown as Added).notificationAdded).toMatchObject({
      type: 'role_changed',
      title: 'You were given the role "reviewer"',
      // Resolved after the change: the recipient's roles already include it.
      recipient: { roles: expect.arrayContaining([{ role: { name: 'reviewer' } }]) as unknown },
    });
    // Every subgraph's channel to the restarted service is up again before the next test
    // (until then its calls answer SERVICE_UNAVAILABLE, as a client honouring Retry-After sees).
    await eventually(async () => {
      const inbox = await graphql(gateway, '{ me { unreadNotificationCount } }', {
        token: admin.token,
      });
      expect(inbox.errors).toBeUndefined();
    });
  });

  it('serves many client subscriptions over one upstream connection', async () => {
    const dave = await signUp(gateway, 'dave@example.com');
    const erin = await signUp(gateway, 'erin@example.com');
    const subscriptions = [
      await subscribed(live(dave.token)),
      await subscribed(live(dave.token)),
      await subscribed(live(erin.token)),
    ];
    const health = (await (
      await fetch(`${apps.httpUrl('notifications-subgraph')}/health`)
    ).json()) as {
      subscriptionConnections: number;
    };
    expect(health.subscriptionConnections).toBe(1);
    const id = await send(dave.id, 'For Dave, twice');
    for (const subscription of subscriptions.slice(0, 2)) await subscription.received(withId(id));
    await subscriptions[2]!.received(withId(await send(erin.id, 'For Erin')));
    expect(subscriptions[2]!.results.map(idOf)).not.toContain(id);
  });

  it('closes a connection without a valid token with 4401', async () => {
    expect((await live(undefined).closed).code).toBe(4401);
    expect((await live('not-a-token').closed).code).toBe(4401);
    const forged = `${admin.token.slice(0, -4)}AAAA`;
    expect((await live(forged).closed).code).toBe(4401);
  });

  it('closes the live connection when its session ends', async () => {
    const frank = await signUp(gateway, 'frank@example.com');
    const client = live(frank.token);
    await subscribed(client);
    const loggedOut = await graphql(gateway, 'mutation { logout }', { token: frank.token });
    expect(loggedOut.errors).toBeUndefined();
    const started = Date.now();
    const { code, reason } = await client.closed;
    expect({ code, reason }).toEqual({ code: 4401, reason: 'Session ended' });
    expect(Date.now() - started).toBeLessThan(5_000);

    // Disabling the user ends their sessions too, and so their live connections.
    const gina = await signUp(gateway, 'gina@example.com');
    const ginaClient = live(gina.token);
    await subscribed(ginaClient);
    const disabled = await graphql(
      gateway,
      'mutation ($id: ID!) { setUserStatus(id: $id, status: DISABLED) { id } }',
      { token: admin.token, variables: { id: gina.id } },
    );
    expect(disabled.errors).toBeUndefined();
    expect((await ginaClient.closed).code).toBe(4401);
  });

  it('limits concurrent subscriptions per user, with an error for the one too many', async () => {
    const grace = await signUp(gateway, 'grace@example.com');
    const client = live(grace.token);
    for (let n = 0; n < PER_USER; n++) await subscribed(client);
    const extra = client.subscribe(ADDED);
    await eventually(async () => {
      if (extra.errors.length === 0) throw new Error('no error yet');
    }, 5_000);
    expect(extra.errors[0]).toEqual([
      expect.objectContaining({
        extensions: expect.objectContaining({ code: 'RATE_LIMITED' }) as unknown,
      }),
    ]);
  });

  it('refuses a subscription it cannot serve, and queries over the socket, with an error message', async () => {
    const henry = await signUp(gateway, 'henry@example.com');
    const client = live(henry.token);
    const invalid = client.subscribe('subscription { nothingHere }');
    const query = client.subscribe('{ me { id } }');
    const unnamed = client.subscribe(ADDED, undefined, 'NoSuchOperation');
    // Validation lets a null through for a variable with a default: refused at once, not at
    // the first event.
    const nullIf = client.subscribe(
      'subscription ($i: Boolean = true) { notificationAdded { id title @include(if: $i) } }',
      { i: null },
    );
    await eventually(async () => {
      if ([invalid, query, unnamed, nullIf].some(({ errors }) => errors.length === 0))
        throw new Error('waiting');
    }, 5_000);
    expect(JSON.stringify(invalid.errors[0])).toContain('nothingHere');
    expect(JSON.stringify(query.errors[0])).toContain('HTTP');
    expect(JSON.stringify(unnamed.errors[0])).toContain('NoSuchOperation');
    expect(JSON.stringify(nullIf.errors[0])).toContain('Variable \\"$i\\"');
    for (const { errors } of [invalid, query, unnamed, nullIf])
      expect(codeOf({ errors: errors[0] as never })).toBe('BAD_USER_INPUT');
  });

  it('delivers exactly once per subscriber with two gateways and two subgraph instances', async () => {
    // A second notifications subgraph and a second gateway using it, on the same services.
    const second = await startApps(
      run,
      ['notifications-subgraph', 'gateway'],
      {},
      {
        alongside: apps,
      },
    );
    try {
      const iris = await signUp(gateway, 'iris@example.com');
      const subscribers = [
        await subscribed(live(iris.token, gateway)),
        await subscribed(live(iris.token, second.httpUrl('gateway')), ADDED, second),
      ];
      const ids: string[] = [];
      for (let n = 0; n < 5; n++) ids.push(await send(iris.id, `Number ${n}`));
      // A last one behind them: once it is in, a duplicate of the five would be in too.
      const last = await send(iris.id, 'The last');
      for (const subscriber of subscribers) {
        await subscriber.received(withId(last));
        const received = subscriber.results.map(idOf).filter((id) => ids.includes(id));
        expect(received.sort()).toEqual([...ids].sort());
      }
    } finally {
      await second.stopAll();
    }
  });
});
