import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { APPS } from '@platform/apps';
import type { AppName } from '@platform/config';
import { eventually } from '@platform/testing';
import { codeOf, graphql, type SignedIn } from './graphql.client';
import { connectLive } from './live.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

// Two instances of every app, as on a cluster: every caller is given all instances of what
// it calls (the gateway every subgraph URL, the subgraphs and services every gRPC address),
// and what must be shared lives in Redis and PostgreSQL. The test shows the replicas behave
// as one, then restarts every instance in turn under steady load, as a rollout does.

const PASSWORD = 'correct horse battery';
const ME = '{ me { id } }';
const HAS_PERMISSION = '{ hasPermission(permission: "users:read") }';
const USE_PERMISSION = '{ users(first: 1) { totalCount } }';
const SEND = 'mutation ($input: SendNotificationInput!) { sendNotification(input: $input) { id } }';
const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken } }`;
const LOGOUT = 'mutation { logout }';
const RESET = 'mutation ($email: String!) { requestPasswordReset(email: $email) }';
const ADDED = 'subscription { notificationAdded { id title } }';
const PAGE = `query ($after: String) {
  me { notifications(first: 50, after: $after) {
    edges { node { id title createdAt } } pageInfo { hasNextPage endCursor } } } }`;

/** Per-address limit of sign-in attempts in the users subgraph, in any 60 s (lowered here). */
const PER_ADDRESS = 8;
/** The gateway's per-user limits on live subscriptions and connections (lowered here). */
const SUBSCRIPTIONS_PER_USER = 3;
const CONNECTIONS_PER_USER = 2;

type Samples = { name: string; labels: Record<string, string>; value: number }[];

function parseMetrics(text: string): Samples {
  const samples: Samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      if (key) labels[key] = value ?? '';
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return samples;
}

/**
 * What a load balancer in front of the gateways does: round-robin over the instances in
 * rotation. An instance is taken out when it is told to stop (as Kubernetes removes a
 * terminating pod's endpoint) and put back once it has started again.
 */
class Balancer {
  private next = 0;
  private readonly out = new Set<number>();
  constructor(private readonly urls: readonly string[]) {}
  pick(): number {
    const inRotation = this.urls.map((_, index) => index).filter((index) => !this.out.has(index));
    const index = inRotation[this.next++ % inRotation.length];
    if (index === undefined) throw new Error('no gateway in rotation');
    return index;
  }
  url(index: number): string {
    return this.urls[index] as string;
  }
  remove(index: number): void {
    this.out.add(index);
  }
  restore(index: number): void {
    this.out.delete(index);
  }
}

interface ClientRequest {
  what: string;
  /** What the rollout was doing when the request was sent. */
  phase: string;
  gateway: number;
  /** Set when the request failed as the client saw it. */
  failure?: string;
  /** Connection refusals retried on the other gateway (the request reached no server). */
  retried: number;
}

/** A subscriber with the app open: reconnects as graphql-ws does, catches up after each. */
interface Subscriber {
  user: SignedIn;
  client: Client;
  /** Notification id → how many times the live subscription pushed it. */
  live: Map<string, number>;
  /** Ids found by the catch-up queries after reconnects. */
  caughtUp: Set<string>;
  /**
   * Ids of the warm-up notifications seen (live or caught up). A warm-up send can fail at the
   * client yet be created (a loaded machine), and the warm-up sends again: these are left out
   * of the exactly-once count, which is about the load and the rollout.
   */
  warmUps: Set<string>;
  /** The catch-ups started (each after a reconnect, at the first live event). */
  catchUps: Promise<void>[];
  /** Close codes of the connections that ended (before dispose). */
  closes: number[];
  connections: number;
}

describe('two replicas of every app', () => {
  let platform: Platform;
  let balancer: Balancer;
  const requests: ClientRequest[] = [];
  let phase = 'steady';
  let runTag = '';

  /**
   * One client request through the balancer. A connection refused (nothing was sent) may go
   * to the next gateway; anything else that is not a clean answer is a failure.
   */
  async function request<T>(
    what: string,
    query: string,
    options: { token?: string; variables?: Record<string, unknown>; address?: string } = {},
  ): Promise<{ data?: T | null; failure?: string }> {
    const record: ClientRequest = { what, phase, gateway: balancer.pick(), retried: 0 };
    requests.push(record);
    for (;;) {
      try {
        const response = await fetch(`${balancer.url(record.gateway)}/graphql`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
            ...(options.address ? { 'x-forwarded-for': options.address } : {}),
          },
          body: JSON.stringify({ query, variables: options.variables }),
        });
        const body = (await response.json()) as {
          data?: T | null;
          errors?: { message: string; extensions?: Record<string, unknown> }[];
        };
        if (response.status !== 200 || body.errors?.length)
          record.failure = `HTTP ${response.status} ${JSON.stringify(body.errors)}`;
        return { data: body.data, failure: record.failure };
      } catch (error) {
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if (code === 'ECONNREFUSED' && record.retried < 3) {
          record.retried += 1;
          record.gateway = balancer.pick();
          continue;
        }
        record.failure = `${(error as Error).message} (${code ?? 'no code'})`;
        return { failure: record.failure };
      }
    }
  }

  /**
   * Registers an account through a gateway, from an address of its own (the per-address
   * limit is lowered here and counts every sign-up from one address).
   */
  let registrations = 0;
  async function signUp(gateway: string, email: string): Promise<SignedIn> {
    const response = await graphql<{ register: { accessToken: string; user: { id: string } } }>(
      gateway,
      'mutation ($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }',
      {
        variables: { input: { email, password: PASSWORD, displayName: email.split('@')[0] } },
        headers: { 'x-forwarded-for': `10.2.0.${++registrations}` },
      },
    );
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return { token: response.data.register.accessToken, id: response.data.register.user.id };
  }

  /** An admin's notification to a user, through the first gateway (outside the load). */
  async function notify(userId: string, title: string): Promise<void> {
    const sent = await graphql(platform.gateways[0]!, SEND, {
      token: platform.admin.token,
      variables: { input: { userId, type: 'replicas', title, body: '' } },
    });
    expect(sent.errors).toBeUndefined();
  }

  /** Every instance's /metrics, parsed. */
  async function scrape(name: AppName, instance: number): Promise<Samples> {
    const response = await fetch(platform.apps.metricsUrl(name, instance));
    return parseMetrics(await response.text());
  }

  /** Calls an instance has answered: gRPC calls (health checks aside) or GraphQL operations. */
  async function served(name: AppName, instance: number): Promise<number> {
    const samples = await scrape(name, instance);
    return samples
      .filter((sample) =>
        name.endsWith('-service')
          ? sample.name === 'grpc_server_handled_total' &&
            sample.labels['grpc_service'] !== 'grpc.health.v1.Health'
          : sample.name === 'graphql_operations_total',
      )
      .reduce((total, sample) => total + sample.value, 0);
  }

  beforeAll(async () => {
    platform = await startPlatform(
      {
        gateway: {
          // Behind a load balancer: the client address is the last X-Forwarded-For entry.
          TRUST_PROXY: 'true',
          MAX_SUBSCRIPTIONS_PER_USER: String(SUBSCRIPTIONS_PER_USER),
          MAX_CONNECTIONS_PER_USER: String(CONNECTIONS_PER_USER),
          SUBSCRIPTION_SESSION_CHECK_MS: '300',
          SHUTDOWN_TIMEOUT_MS: '15000',
        },
        'users-subgraph': { RATE_LIMIT_PER_ADDRESS: String(PER_ADDRESS) },
      },
      { instances: 2, startTimeoutMs: 60_000 },
    );
    balancer = new Balancer(platform.gateways);
    runTag = platform.run.id.replace(/_/g, '');
  }, 180_000);

  afterAll(async () => {
    await stopPlatform(platform);
  }, 60_000);

  it('runs two instances of every app, each on its own port', () => {
    for (const app of APPS) expect(platform.apps.instances(app.name), app.name).toBe(2);
    expect(new Set(platform.gateways).size).toBe(2);
  });

  it('refuses an ended session at once at both gateways, and closes its live connections', async () => {
    const [first, second] = platform.gateways as [string, string];
    const user = await signUp(first, `ended-${runTag}@example.com`);
    for (const gateway of platform.gateways)
      expect(
        (await graphql<{ me: { id: string } }>(gateway, ME, { token: user.token })).data?.me,
      ).toEqual({ id: user.id });
    const live = connectLive(first, user.token);
    const subscription = live.subscribe(ADDED);
    await notify(user.id, 'before logout');
    await subscription.next(1, 15_000);

    const logout = await graphql<{ logout: boolean }>(second, LOGOUT, { token: user.token });
    expect(logout.data?.logout).toBe(true);
    // At once: the very next request, at either gateway.
    for (const gateway of [first, second, first, second])
      expect(codeOf(await graphql(gateway, ME, { token: user.token }))).toBe('UNAUTHENTICATED');
    expect((await live.closed).code).toBe(4401);
    subscription.unsubscribe();
    await live.dispose();
  });

  it('shares sign-in back-off and per-address rate limits across instances', async () => {
    const user = await signUp(platform.gateways[0]!, `guess-${runTag}@example.com`);
    // Wrong passwords from one address, alternating gateways (and so subgraph and auth
    // instances): 5 are checked, the 6th is refused wherever it lands.
    const codes: unknown[] = [];
    for (let attempt = 0; attempt < 6; attempt++)
      codes.push(
        codeOf(
          await graphql(platform.gateways[attempt % 2]!, LOGIN, {
            variables: { email: `guess-${runTag}@example.com`, password: 'wrong guess' },
            headers: { 'x-forwarded-for': '198.51.100.20' },
          }),
        ),
      );
    expect(codes).toEqual([...Array<string>(5).fill('UNAUTHENTICATED'), 'RATE_LIMITED']);
    expect(user.id).toBeTruthy();

    // The users subgraph's per-address limit: PER_ADDRESS attempts in any 60 s from one
    // address in total, however they are spread over instances.
    const answers: unknown[] = [];
    for (let attempt = 0; attempt <= PER_ADDRESS; attempt++) {
      const response = await graphql<{ requestPasswordReset: boolean }>(
        platform.gateways[attempt % 2]!,
        RESET,
        {
          variables: { email: `nobody-${runTag}@example.com` },
          headers: { 'x-forwarded-for': '198.51.100.21' },
        },
      );
      answers.push(response.data?.requestPasswordReset ?? codeOf(response));
    }
    expect(answers).toEqual([...Array<boolean>(PER_ADDRESS).fill(true), 'RATE_LIMITED']);
  });

  it('sees a role change at once through either instance (shared permission caches)', async () => {
    const [first, second] = platform.gateways as [string, string];
    const { admin } = platform;
    const role = await graphql<{ createRole: { id: string } }>(
      first,
      'mutation ($input: CreateRoleInput!) { createRole(input: $input) { id } }',
      {
        token: admin.token,
        variables: { input: { name: `reader-${runTag}`, permissions: ['users:read'] } },
      },
    );
    const roleId = role.data?.createRole.id;
    expect(roleId).toBeTruthy();
    const user = await signUp(first, `reader-${runTag}@example.com`);
    // Both gateways, twice each: both subgraph and permission instances have cached "no".
    for (const gateway of [first, second, first, second])
      expect(codeOf(await graphql(gateway, USE_PERMISSION, { token: user.token }))).toBe(
        'FORBIDDEN',
      );
    const assign = 'mutation ($u: ID!, $r: ID!) { assignRole(userId: $u, roleId: $r) }';
    const unassign = 'mutation ($u: ID!, $r: ID!) { unassignRole(userId: $u, roleId: $r) }';
    expect(
      (await graphql(first, assign, { token: admin.token, variables: { u: user.id, r: roleId } }))
        .errors,
    ).toBeUndefined();
    for (const gateway of [second, first, second, first])
      expect(
        (await graphql(gateway, USE_PERMISSION, { token: user.token })).errors,
      ).toBeUndefined();
    expect(
      (
        await graphql(second, unassign, {
          token: admin.token,
          variables: { u: user.id, r: roleId },
        })
      ).errors,
    ).toBeUndefined();
    for (const gateway of [first, second, first, second])
      expect(codeOf(await graphql(gateway, USE_PERMISSION, { token: user.token }))).toBe(
        'FORBIDDEN',
      );
  });

  it('holds a user to one subscription and connection limit across both gateways', async () => {
    const user = await signUp(platform.gateways[0]!, `limits-${runTag}@example.com`);
    const [first, second] = platform.gateways as [string, string];
    const a = connectLive(first, user.token);
    const b = connectLive(second, user.token);
    const held = [a.subscribe(ADDED), b.subscribe(ADDED), a.subscribe(ADDED)];
    // All three live (a notification reaches each): their slots are taken.
    await notify(user.id, 'limits');
    for (const subscription of held) await subscription.next(1, 15_000);
    const refused = b.subscribe(ADDED);
    await eventually(() => expect(refused.errors).toHaveLength(1));
    expect(JSON.stringify(refused.errors)).toContain('RATE_LIMITED');
    // A connection beyond the per-user limit is refused, whichever gateway it reaches.
    const c = connectLive(first, user.token);
    expect((await c.closed).code).toBe(4429);
    // A slot given back at one gateway can be taken at the other.
    held[0]!.unsubscribe();
    await eventually(async () => {
      const again = b.subscribe(ADDED);
      await notify(user.id, 'limits again');
      await eventually(() => {
        if (again.results.length === 0 && again.errors.length === 0) throw new Error('no answer');
      }, 10_000);
      if (again.errors.length > 0) throw new Error(`refused: ${JSON.stringify(again.errors)}`);
    }, 20_000);
    await Promise.all([a.dispose(), b.dispose(), c.dispose()]);
  });

  it('survives a rolling restart of every instance under load: no failed request, every notification once', async () => {
    const warmUpTitle = `replicas ${runTag} warm-up`;
    // Subscribers, each with the app open on whichever gateway the balancer gives it.
    const subscribers: Subscriber[] = [];
    for (let index = 0; index < 3; index++) {
      const user = await signUp(
        platform.gateways[index % 2]!,
        `live-${runTag}-${index}@example.com`,
      );
      subscribers.push(openSubscriber(user));
    }
    const sent = new Map<string, Set<string>>(subscribers.map((s) => [s.user.id, new Set()]));
    // Every subscriber is live: a first notification reaches each.
    for (const subscriber of subscribers) {
      await eventually(async () => {
        const id = await sendTo(subscriber, 'warm-up');
        await eventually(() => expect(subscriber.live.has(id)).toBe(true), 3_000);
      }, 20_000);
    }

    // Steady load: lanes of queries and mutations through the balancer.
    const lanes = await Promise.all(
      [0, 1, 2].map((lane) =>
        signUp(platform.gateways[lane % 2]!, `lane-${runTag}-${lane}@example.com`),
      ),
    );
    const loadStart = requests.length;
    const timeline: string[] = [];
    const testStart = Date.now();
    const mark = (what: string) =>
      timeline.push(`${what} ${((Date.now() - testStart) / 1000).toFixed(1)} s`);
    let stopped = false;
    let address = 0;
    const lanesDone = lanes.map(async (user, lane) => {
      // A client signs in again now and then, and goes on with its new session (a user
      // keeps a bounded number of sessions: the oldest end).
      let token = user.token;
      for (let round = 0; !stopped; round++) {
        await request('me', ME, { token });
        await request('hasPermission', HAS_PERMISSION, { token });
        const subscriber = subscribers[(lane + round) % subscribers.length]!;
        await sendTo(subscriber, `${lane}.${round}`);
        if (round % 3 === 0) {
          const { data } = await request<{ login: { accessToken: string } }>('login', LOGIN, {
            variables: { email: `lane-${runTag}-${lane}@example.com`, password: PASSWORD },
            address: `10.1.${lane}.${address++ % 250}`,
          });
          if (data?.login) token = data.login.accessToken;
        }
      }
    });

    async function sendTo(subscriber: Subscriber, label: string): Promise<string> {
      const title = `replicas ${runTag} ${label}`;
      const { data, failure } = await request<{ sendNotification: { id: string } }>(
        'sendNotification',
        SEND,
        {
          token: platform.admin.token,
          variables: { input: { userId: subscriber.user.id, type: 'replicas', title, body: '' } },
        },
      );
      const id = data?.sendNotification.id;
      if (!id) return `failed: ${failure}`;
      sent.get(subscriber.user.id)!.add(id);
      return id;
    }

    function openSubscriber(user: SignedIn): Subscriber {
      /** When the last connection closed, while a catch-up is still to do. */
      let catchUpSince: number | undefined;
      const subscriber: Subscriber = {
        user,
        live: new Map(),
        caughtUp: new Set(),
        warmUps: new Set(),
        catchUps: [],
        closes: [],
        connections: 0,
        client: createClient({
          url: () => `${balancer.url(balancer.pick()).replace(/^http/, 'ws')}/graphql`,
          webSocketImpl: WebSocket,
          connectionParams: { authorization: `Bearer ${user.token}` },
          lazy: false,
          retryAttempts: Number.POSITIVE_INFINITY,
          retryWait: () => new Promise((resolve) => setTimeout(resolve, 100)),
          onNonLazyError: () => undefined,
          on: {
            connected: () => (subscriber.connections += 1),
            closed: (event) => {
              subscriber.closes.push((event as { code: number }).code);
              catchUpSince ??= Date.now();
            },
          },
        }),
      };
      const known = (id: string) => subscriber.live.has(id) || subscriber.caughtUp.has(id);
      /**
       * Pages back through the inbox (newest first) to a while before the connection closed,
       * keeping what the subscription did not bring. Run once the subscription is live again
       * (its first event since the reconnect): whatever is created from then on arrives live,
       * everything before is in the pages.
       */
      async function catchUp(since: number): Promise<void> {
        let after: string | undefined;
        for (;;) {
          const { data } = await request<{
            me: {
              notifications: {
                edges: { node: { id: string; title: string; createdAt: string } }[];
                pageInfo: { hasNextPage: boolean; endCursor: string };
              };
            };
          }>('catch-up', PAGE, { token: user.token, variables: { after } });
          const page = data?.me.notifications;
          if (!page) return;
          for (const { node } of page.edges) {
            if (Date.parse(node.createdAt) < since - 5_000) return;
            if (node.title === warmUpTitle) subscriber.warmUps.add(node.id);
            if (!known(node.id) && node.title.startsWith(`replicas ${runTag}`))
              subscriber.caughtUp.add(node.id);
          }
          if (!page.pageInfo.hasNextPage) return;
          after = page.pageInfo.endCursor;
        }
      }
      subscriber.client.subscribe(
        { query: ADDED },
        {
          next: (result) => {
            const added = (
              result.data as { notificationAdded?: { id: string; title: string } } | undefined
            )?.notificationAdded;
            if (!added) return;
            const { id } = added;
            if (added.title === warmUpTitle) subscriber.warmUps.add(id);
            subscriber.live.set(id, (subscriber.live.get(id) ?? 0) + 1);
            if (catchUpSince !== undefined) {
              const since = catchUpSince;
              catchUpSince = undefined;
              subscriber.catchUps.push(catchUp(since));
            }
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
      return subscriber;
    }

    /** Waits until an instance that just started has answered calls of the load. */
    async function takingTraffic(name: AppName, instance: number): Promise<void> {
      await eventually(async () => {
        const count = await served(name, instance);
        if (count === 0)
          throw new Error(
            `${name}#${instance} took no calls since it restarted; load requests: ${requests.length - loadStart}, failed: ${requests
              .slice(loadStart)
              .filter((r) => r.failure)
              .map((r) => `${r.what} ${r.phase}: ${r.failure}`)
              .slice(0, 5)
              .join('; ')}`,
          );
      }, 30_000);
    }

    // gRPC calls are spread over both instances of each service, and subgraph fetches over
    // both instances of each subgraph: counted from each instance's metrics.
    const baseline = new Map<string, number>();
    for (const app of APPS)
      for (const instance of [0, 1])
        baseline.set(`${app.name}#${instance}`, await served(app.name, instance));
    const delta = async (name: AppName) =>
      Promise.all(
        [0, 1].map(
          async (instance) => (await served(name, instance)) - baseline.get(`${name}#${instance}`)!,
        ),
      );
    await eventually(async () => {
      for (const app of APPS) {
        const counts = await delta(app.name);
        expect(counts[0]! + counts[1]!, app.name).toBeGreaterThanOrEqual(20);
      }
    }, 30_000);
    for (const app of APPS) {
      const counts = await delta(app.name);
      // Round-robin: each instance answers a fair share (at least a quarter of the calls).
      expect(Math.min(...counts), `${app.name}: ${counts.join(' / ')}`).toBeGreaterThanOrEqual(
        (counts[0]! + counts[1]!) / 4,
      );
    }

    mark('spread checked');
    // The rollout, as Kubernetes does one of every Deployment at once: the first instance
    // of every service, then of every subgraph, then the gateway; then the second ones. Each
    // is SIGTERMed (it drains), started again and seen taking traffic before the next step.
    const exits: string[] = [];
    const restart = async (name: AppName, instance: number) => {
      const exited = platform.apps.exited(name, instance);
      await platform.apps.stop(name, instance);
      const outcome = await exited;
      if (outcome?.code !== 0) exits.push(`${name}#${instance}: ${JSON.stringify(outcome)}`);
      await platform.apps.start(name, {}, instance);
    };
    for (const instance of [0, 1])
      for (const kind of ['service', 'subgraph', 'gateway'] as const) {
        const stage = APPS.filter((app) => app.kind === kind).map((app) => app.name);
        phase = `restart of the ${kind}s #${instance}`;
        if (kind === 'gateway') balancer.remove(instance);
        await Promise.all(stage.map((name) => restart(name, instance)));
        if (kind === 'gateway') balancer.restore(instance);
        phase = `restart of the ${kind}s #${instance} (started again)`;
        await Promise.all(stage.map((name) => takingTraffic(name, instance)));
        mark(`${kind}s #${instance} restarted`);
      }
    phase = 'after the rollout';
    stopped = true;
    await Promise.all(lanesDone);
    // A last notification to each subscriber: it arrives live, and sets off a catch-up still
    // to do after its last reconnect.
    for (const subscriber of subscribers) await sendTo(subscriber, 'last');

    const failures = requests
      .slice(loadStart)
      .filter((record) => record.failure)
      .map(
        (record) =>
          `${record.what} via gateway ${record.gateway} during ${record.phase}: ${record.failure}`,
      );
    const retried = requests.slice(loadStart).filter((record) => record.retried > 0).length;
    if (failures.length > 0)
      for (const app of APPS)
        for (const instance of [0, 1])
          console.error(
            `${app.name}#${instance}:\n` +
              platform.apps
                .logs(app.name, instance)
                .filter((line) => /"level":(40|50|60)/.test(line))
                .slice(-15)
                .join('\n'),
          );
    // No request failed, and none even had to be retried elsewhere: every instance drained
    // what it had taken, and a connection was never refused (the balancer had taken the
    // terminating gateway out, and the gateway's subgraph client skips a refusing instance).
    expect({ failures, exits, retried }).toEqual({ failures: [], exits: [], retried: 0 });
    expect(requests.length - loadStart).toBeGreaterThan(100);

    // Every notification reached its subscriber exactly once: live, or (sent while it was
    // reconnecting) by the catch-up; never pushed twice.
    await eventually(async () => {
      await Promise.all(subscribers.flatMap((subscriber) => subscriber.catchUps));
      for (const subscriber of subscribers) {
        const measured = (id: string) => !subscriber.warmUps.has(id);
        const expected = [...sent.get(subscriber.user.id)!].filter(measured).sort();
        const got = [...new Set([...subscriber.live.keys(), ...subscriber.caughtUp])]
          .filter(measured)
          .sort();
        expect(got).toEqual(expected);
      }
    }, 30_000);
    for (const subscriber of subscribers) {
      const twice = [...subscriber.live].filter(([, count]) => count > 1);
      expect(twice).toEqual([]);
      // Every close was one a client reconnects after (going away / service restart).
      expect(subscriber.closes.every((code) => code === 1001 || code === 1012)).toBe(true);
      expect(subscriber.connections).toBeGreaterThan(1);
    }
    for (const subscriber of subscribers) await subscriber.client.dispose();
    mark('deliveries checked');
    console.info(
      `rolling restart timeline (since the load started): ${timeline.join(', ')}; ` +
        `rolling restart: ${requests.length - loadStart} requests, ${retried} retried after a refused connection; ` +
        subscribers
          .map(
            (s) =>
              `subscriber ${s.user.id}: ${s.live.size} live, ${s.caughtUp.size} caught up, ${s.connections} connections, closes ${s.closes.join(',')}`,
          )
          .join('; '),
    );
  }, 240_000);
});
