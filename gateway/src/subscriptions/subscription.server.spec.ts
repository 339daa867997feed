import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { buildSchema, GraphQLError, GraphQLSchema } from 'graphql';
import { describe, expect, it, vi } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { createLogger } from '@platform/logger';
import type { SessionRevocations, TokenVerifier } from '@platform/tokens';
import { DEFAULT_OPERATION_LIMITS } from '../limits/operation-cost';
import { UpstreamSubscriptionError, type FederatedSubscriptions } from './federated-subscriptions';
import type { SharedLimits } from './shared-limits';
import { endingSource, unlessTooSlow } from './socket-messages';
import { attachSubscriptionServer, formatSubscriptionFailure } from './subscription.server';

async function* events(count: number): AsyncGenerator<number> {
  for (let n = 0; n < count; n++) yield n;
}

describe('unlessTooSlow', () => {
  it('passes every result on while the client keeps up', async () => {
    const socket = { bufferedAmount: 0 };
    const seen: number[] = [];
    for await (const n of unlessTooSlow(events(5), socket, 1_000, () => undefined)) seen.push(n);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('stops and reports once the unsent data passes the limit, and the source is closed', async () => {
    const socket = { bufferedAmount: 0 };
    let finished = false;
    async function* source() {
      try {
        yield* events(10);
      } finally {
        finished = true;
      }
    }
    const seen: number[] = [];
    let reported = 0;
    for await (const n of unlessTooSlow(source(), socket, 1_000, () => reported++)) {
      seen.push(n);
      if (n === 2) socket.bufferedAmount = 5_000; // the client stopped reading
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(reported).toBe(1);
    expect(finished).toBe(true);
  });
});

/**
 * An upstream subscription as graphql-ws's client iterates one: no event until one comes (here
 * none), and `return()` ends it at once, its pending `next()` then resolving done.
 */
function quietUpstream() {
  let wake = () => undefined as void;
  let ended = false;
  const upstream: AsyncIterableIterator<number> & { ended(): boolean } = {
    ended: () => ended,
    async next() {
      if (!ended) await new Promise<void>((resolve) => (wake = resolve));
      return { done: true, value: undefined };
    },
    async return() {
      ended = true;
      wake();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => upstream,
  };
  return upstream;
}

describe('endingSource', () => {
  it('ends the upstream subscription as soon as the client ends its own, with no event in between', async () => {
    for (const wrapped of [false, true]) {
      const upstream = quietUpstream();
      let finished = false;
      async function* results() {
        try {
          for await (const event of upstream) yield event;
        } finally {
          finished = true;
        }
      }
      const ending = endingSource(results(), upstream);
      const subscription = wrapped
        ? unlessTooSlow(ending, { bufferedAmount: 0 }, 1_000, () => undefined)
        : ending;
      // graphql-ws's server waits for the next result, then the client sends `complete`.
      const pending = subscription.next();
      const stalled = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('return() waited for an upstream event')), 1_000),
      );
      await Promise.race([subscription.return(undefined), stalled]);
      expect(upstream.ended()).toBe(true);
      expect(await pending).toEqual({ done: true, value: undefined });
      expect(finished).toBe(true);
    }
  });
});

describe('formatSubscriptionFailure', () => {
  // As graphql-ws hands a subscription's failure to `onError`: the thrown error, wrapped.
  const thrown = (error: Error) => new GraphQLError(error.message, { originalError: error });

  it('passes a subgraph outage on with its code, and answers one here as SERVICE_UNAVAILABLE', () => {
    const logged: unknown[] = [];
    const upstream = new UpstreamSubscriptionError([
      {
        message: 'Service temporarily unavailable; try again shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      },
    ]);
    expect(
      formatSubscriptionFailure(
        [thrown(upstream), thrown(new Error('Connection is closed.'))],
        (error) => logged.push(error),
      ),
    ).toEqual([
      {
        message: 'Service temporarily unavailable; try again shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      },
      {
        message: 'Service temporarily unavailable; try again shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      },
    ]);
  });

  it('masks anything else, and leaves refusals made before the subscription ran alone', () => {
    const logged: unknown[] = [];
    expect(
      formatSubscriptionFailure([thrown(new TypeError('x is undefined'))], (error) =>
        logged.push(error),
      ),
    ).toEqual([
      { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } },
    ]);
    expect(logged).toHaveLength(1);
    const refusal = new GraphQLError('At most 10 subscriptions at once', {
      extensions: { code: 'RATE_LIMITED', retryAfter: 60 },
    });
    expect(formatSubscriptionFailure([refusal], () => undefined)).toBeUndefined();
  });
});

/**
 * The subscription server on a free port, with its collaborators faked: a Redis that answers
 * every lease after `redisMs` (a slow or busy Redis), a charge for new texts that takes as long,
 * and a subgraph whose subscriptions tick every 20 ms until they are ended.
 */
/** The API schema, counting how often an operation is validated against it. */
class CountingSchema extends GraphQLSchema {
  validated = 0;
  override getSubscriptionType() {
    this.validated++;
    return super.getSubscriptionType();
  }
}

async function startSubscriptionServer(options: {
  perUser: number;
  redisMs: number;
  /** How long a token is valid from when it is checked (default an hour), by its header. */
  tokenLifetimeMs?: (header: string) => number;
}) {
  const schema = new CountingSchema(
    buildSchema(
      'type Query { ok: Boolean } type Subscription { tick(every: Int): Int }',
    ).toConfig(),
  );
  /** Sessions ended so far: their connections close at the next check (every 50 ms). */
  const ended = new Set<string>();
  const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const leases = new Set<string>();
  const shared: SharedLimits = {
    leaseName: (...parts) => ['instance', ...parts].join(':'),
    async acquire(kind, userId, lease, limit) {
      await delay(options.redisMs);
      const held = [...leases].filter((one) => one.startsWith(`${kind}|${userId}|`));
      if (held.length >= limit) return false;
      leases.add(`${kind}|${userId}|${lease}`);
      return true;
    },
    async release(kind, userId, lease) {
      await delay(options.redisMs);
      leases.delete(`${kind}|${userId}|${lease}`);
    },
    close: () => undefined,
  };
  let running = 0;
  const federated = {
    schema,
    plan: () => ({ primary: { serviceName: 'ticks' }, rest: undefined }),
    run: () =>
      (async function* ticks() {
        running++;
        try {
          for (let tick = 0; ; tick++) {
            await delay(20);
            yield { data: { tick } };
          }
        } finally {
          running--;
        }
      })(),
  } as unknown as FederatedSubscriptions;
  const identity = { userId: 'user-1', sessionId: 'session-1', expiresAt: Date.now() + 3_600_000 };
  const server = createServer();
  const subscriptions = attachSubscriptionServer({
    server,
    federated,
    tokens: {
      verifyHeader: (header: string) =>
        Promise.resolve(
          options.tokenLifetimeMs
            ? { ...identity, expiresAt: Date.now() + options.tokenLifetimeMs(header) }
            : identity,
        ),
    } as unknown as TokenVerifier,
    revocations: {
      revokedAmong: (sessions: readonly string[]) =>
        Promise.resolve(new Set(sessions.filter((session) => ended.has(session)))),
    } as unknown as SessionRevocations,
    limits: {
      perUser: options.perUser,
      connectionsPerUser: 5,
      maxUnauthenticatedMessageBytes: 4_096,
      maxMessageBytes: 65_536,
      maxBufferedBytes: 1_000_000,
      sessionCheckMs: 50,
      pingMs: 3_600_000,
    },
    shared,
    operationLimits: DEFAULT_OPERATION_LIMITS,
    clientAddressOf: () => '203.0.113.9',
    chargeNewDocument: async () => {
      await delay(options.redisMs);
      return undefined;
    },
    logger: createLogger({ name: 'subscription-server-test', level: 'silent' }),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/graphql`,
    port,
    schema,
    endSession: () => ended.add(identity.sessionId),
    running: () => running,
    subscriptionLeases: () => [...leases].filter((one) => one.startsWith('subscriptions|')),
    subscriptions,
    async stop() {
      await subscriptions.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A graphql-ws client driven message by message, signed in: what the server sent, by kind. */
async function connectClient(url: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const events = new Map<string, number>();
  const errors = new Map<string, unknown>();
  let acknowledged = false;
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as { type: string; id?: string; payload?: unknown };
    if (message.type === 'connection_ack') acknowledged = true;
    if (message.type === 'next' && message.id)
      events.set(message.id, (events.get(message.id) ?? 0) + 1);
    if (message.type === 'error' && message.id) errors.set(message.id, message.payload);
  });
  const send = (message: object) => socket.send(JSON.stringify(message));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise((resolve) => socket.once('open', resolve));
  send({ type: 'connection_init', payload: { authorization: 'Bearer token' } });
  await vi.waitFor(() => expect(acknowledged).toBe(true));
  return {
    send,
    /** Sends raw text, as a client that does not speak the protocol does. */
    sendText: (text: string) => socket.send(text),
    closed,
    events,
    errors,
    eventCount: () => [...events.values()].reduce((sum, count) => sum + count, 0),
    close: () => socket.close(),
  };
}

/** Closes the client, waits until its subscriptions stopped running, then stops the server. */
async function stopBoth(
  server: Awaited<ReturnType<typeof startSubscriptionServer>>,
  closeClient: () => void,
) {
  closeClient();
  await vi.waitFor(() => expect(server.running()).toBe(0));
  await server.stop();
}

describe('attachSubscriptionServer', () => {
  it('runs one subscription per id when a client reuses an id it completed while Redis is slow, and ends them all', async () => {
    const server = await startSubscriptionServer({ perUser: 2, redisMs: 20 });
    const client = await connectClient(server.url);
    const { send } = client;
    try {
      const known = 'subscription { tick }';
      send({ id: 'first', type: 'subscribe', payload: { query: known } });
      await vi.waitFor(() => expect(client.events.get('first')).toBeGreaterThan(0));
      send({ id: 'first', type: 'complete' });
      for (let round = 0; round < 5; round++) {
        const id = `reused${round}`;
        // A new text (charged, then admitted: two slow round trips), completed at once, and
        // the same id again with a known text: the first is still being admitted then.
        send({ id, type: 'subscribe', payload: { query: `subscription Round${round} { tick }` } });
        send({ id, type: 'complete' });
        send({ id, type: 'subscribe', payload: { query: known } });
        // Served, or refused while the id's first subscription is still ending.
        await vi.waitFor(() => expect(client.events.has(id) || client.errors.has(id)).toBe(true));
        send({ id, type: 'complete' });
      }
      // Every subscription was completed: none runs, holds a slot, or sends anything more.
      await vi.waitFor(() => {
        expect(server.running()).toBe(0);
        expect(server.subscriptionLeases()).toEqual([]);
        expect(server.subscriptions.subscriptions()).toBe(0);
      });
      // A subscription started now ticks twice (40 ms): any left running would have too.
      const sent = client.eventCount();
      client.send({ id: 'probe', type: 'subscribe', payload: { query: known } });
      await vi.waitFor(() => expect(client.events.get('probe')).toBeGreaterThan(1));
      expect(client.eventCount() - client.events.get('probe')!).toBe(sent);
    } finally {
      await stopBoth(server, client.close);
    }
  });

  it('refuses a subscribe naming no operation of its document before it takes a slot', async () => {
    const server = await startSubscriptionServer({ perUser: 1, redisMs: 0 });
    const client = await connectClient(server.url);
    try {
      const query = 'subscription { tick }';
      for (const [id, operationName] of [
        ['empty', ''],
        ['unknown', 'Nope'],
      ] as const)
        client.send({ id, type: 'subscribe', payload: { query, operationName } });
      await vi.waitFor(() => expect(client.errors.size).toBe(2));
      for (const id of ['empty', 'unknown'])
        expect(client.errors.get(id)).toEqual([
          expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT' } }),
        ]);
      expect(server.subscriptionLeases()).toEqual([]);
      // The user's one slot is still free.
      client.send({ id: 'served', type: 'subscribe', payload: { query } });
      await vi.waitFor(() => expect(client.events.get('served')).toBeGreaterThan(0));
    } finally {
      await stopBoth(server, client.close);
    }
  });

  it('refuses a subscribe whose variables do not fit its operation before it takes a slot or runs', async () => {
    const server = await startSubscriptionServer({ perUser: 1, redisMs: 0 });
    const client = await connectClient(server.url);
    try {
      const query = 'subscription ($n: Int!) { tick(every: $n) }';
      const refused = {
        missing: {},
        text: { n: 'abc' },
        fraction: { n: 2.5 },
        huge: { n: 1e12 },
        null: { n: null },
      };
      for (const [id, variables] of Object.entries(refused))
        client.send({ id, type: 'subscribe', payload: { query, variables } });
      await vi.waitFor(() => expect(client.errors.size).toBe(Object.keys(refused).length));
      for (const id of Object.keys(refused)) {
        const errors = client.errors.get(id) as { message: string; extensions: unknown }[];
        expect(errors).toHaveLength(1);
        expect(errors[0]!.message).toContain('$n');
        expect(errors[0]!.extensions).toEqual({ code: 'BAD_USER_INPUT' });
      }
      expect(server.running()).toBe(0);
      expect(server.subscriptionLeases()).toEqual([]);
      // The user's one slot is still free, and a value that fits is served.
      client.send({ id: 'served', type: 'subscribe', payload: { query, variables: { n: 5 } } });
      await vi.waitFor(() => expect(client.events.get('served')).toBeGreaterThan(0));
    } finally {
      await stopBoth(server, client.close);
    }
  });

  it('closes a connection whose token expired with 4403, which a graphql-ws client retries with the fresh token it fetches', async () => {
    const server = await startSubscriptionServer({
      perUser: 3,
      redisMs: 0,
      tokenLifetimeMs: (header) => (header === 'Bearer first' ? 300 : 3_600_000),
    });
    const given: string[] = [];
    const closes: number[] = [];
    const ticks: number[] = [];
    let failed: unknown;
    const client = createClient({
      url: server.url,
      webSocketImpl: WebSocket,
      retryAttempts: 3,
      retryWait: () => Promise.resolve(),
      // An app's connectionParams: the token it holds now (refreshed after the first expired).
      connectionParams: () => {
        const token = given.length === 0 ? 'first' : 'second';
        given.push(token);
        return { authorization: `Bearer ${token}` };
      },
      on: { closed: (event) => closes.push((event as { code: number }).code) },
    });
    const unsubscribe = client.subscribe<{ tick: number }>(
      { query: 'subscription { tick }' },
      {
        next: (result) => ticks.push(result.data!.tick),
        error: (error) => (failed = error),
        complete: () => undefined,
      },
    );
    try {
      await vi.waitFor(() => expect(closes).toEqual([4403]), { timeout: 5_000 });
      const before = ticks.length;
      // The same subscription goes on, over a connection made with the fresh token.
      await vi.waitFor(() => expect(ticks.length).toBeGreaterThan(before + 1), { timeout: 5_000 });
      expect(given).toEqual(['first', 'second']);
      expect(failed).toBeUndefined();
    } finally {
      unsubscribe();
      await stopBoth(server, () => void client.dispose());
    }
  });

  it('closes a connection whose client sends what only a server sends (4400), as its own fault', async () => {
    const server = await startSubscriptionServer({ perUser: 3, redisMs: 0 });
    const internal = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      for (const message of [
        { id: 'x', type: 'next', payload: { data: { tick: 1 } } },
        { id: 'x', type: 'error', payload: [{ message: 'no' }] },
        { type: 'connection_ack' },
      ]) {
        const client = await connectClient(server.url);
        client.send(message);
        expect((await client.closed).code).toBe(4400);
      }
      // A frame over the limit: ws closes the connection 1009 on its own.
      const client = await connectClient(server.url);
      client.sendText(JSON.stringify({ type: 'ping', payload: { pad: 'x'.repeat(70_000) } }));
      expect((await client.closed).code).toBe(1009);
      expect(internal).not.toHaveBeenCalled();
    } finally {
      internal.mockRestore();
      await server.stop();
    }
  });

  it('parses nothing a client sends after the gateway closed its connection', async () => {
    const server = await startSubscriptionServer({ perUser: 3, redisMs: 0 });
    // A client that never answers the close: ws keeps reading its messages meanwhile.
    const socket = connect(server.port, '127.0.0.1');
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    /** One masked frame, as a client sends it: text (opcode 1) unless told. */
    const frame = (payload: Buffer, opcode = 0x1) => {
      const mask = randomBytes(4);
      const header = Buffer.alloc(payload.length < 126 ? 2 : 4);
      header[0] = 0x80 | opcode;
      header[1] = 0x80 | (payload.length < 126 ? payload.length : 126);
      if (payload.length >= 126) header.writeUInt16BE(payload.length, 2);
      return Buffer.concat([header, mask, payload.map((byte, i) => byte ^ mask[i % 4]!)]);
    };
    const send = (message: object) => socket.write(frame(Buffer.from(JSON.stringify(message))));
    try {
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(
        [
          'GET /graphql HTTP/1.1',
          `Host: 127.0.0.1:${server.port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Protocol: graphql-transport-ws',
          '',
          '',
        ].join('\r\n'),
      );
      await vi.waitFor(() => expect(received).toContain('101 Switching Protocols'));
      send({ type: 'connection_init', payload: { authorization: 'Bearer token' } });
      await vi.waitFor(() => expect(received).toContain('connection_ack'));
      send({ id: 'before', type: 'subscribe', payload: { query: 'subscription { tick }' } });
      await vi.waitFor(() => expect(server.schema.validated).toBeGreaterThan(0));
      // The session ends: the gateway closes the connection (4401), and the client goes on.
      server.endSession();
      await vi.waitFor(() => expect(received).toContain('Session ended'));
      const validated = server.schema.validated;
      for (let n = 0; n < 20; n++)
        send({
          id: `after${n}`,
          type: 'subscribe',
          payload: { query: `subscription N${n} { tick }` },
        });
      // The client's close frame last: once the server has read it, it ends the TCP connection,
      // and every message before it has been handed on.
      const ended = new Promise((resolve) => socket.once('end', resolve));
      socket.write(frame(Buffer.from([0x03, 0xe8]), 0x8));
      await ended;
      expect(server.schema.validated).toBe(validated);
    } finally {
      await stopBoth(server, () => socket.destroy());
    }
  });
});
