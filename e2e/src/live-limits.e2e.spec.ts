import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually } from '@platform/testing';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { signUp, type SignedIn } from './graphql.client';

const SUBSCRIPTIONS_PER_USER = 3;
const CONNECTIONS_PER_USER = 4;
const ADDED = 'subscription { notificationAdded { id } }';

interface RawSocket {
  socket: WebSocket;
  /** Every message the server sent, parsed. */
  messages: { type: string; id?: string; payload?: unknown }[];
  closed: Promise<{ code: number; reason: string }>;
}

/** A graphql-ws connection driven message by message, as a misbehaving client would. */
async function open(gateway: string): Promise<RawSocket> {
  const socket = new WebSocket(`${gateway.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: RawSocket['messages'] = [];
  socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString()) as never));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, messages, closed };
}

async function signedInSocket(gateway: string, user: SignedIn): Promise<RawSocket> {
  const raw = await open(gateway);
  raw.socket.send(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${user.token}` } }),
  );
  await eventually(() => {
    if (!raw.messages.some((m) => m.type === 'connection_ack')) throw new Error('no ack yet');
  }, 10_000);
  return raw;
}

const subscribe = (raw: RawSocket, id: string) =>
  raw.socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: ADDED } }));
const complete = (raw: RawSocket, id: string) =>
  raw.socket.send(JSON.stringify({ id, type: 'complete' }));
const refused = (raw: RawSocket) =>
  raw.messages.filter(
    (m) => m.type === 'error' && JSON.stringify(m.payload).includes('RATE_LIMITED'),
  );

describe('WebSocket limits hold exactly, and nothing leaks', () => {
  let platform: Platform | undefined;
  let gateway: string;

  beforeAll(async () => {
    platform = await startPlatform({
      gateway: {
        MAX_SUBSCRIPTIONS_PER_USER: String(SUBSCRIPTIONS_PER_USER),
        MAX_CONNECTIONS_PER_USER: String(CONNECTIONS_PER_USER),
      },
    });
    gateway = platform.gateway;
  });

  afterAll(() => stopPlatform(platform));

  /** What the notifications subgraph holds (the gateway subscribes there per client subscription). */
  const held = async () => {
    const response = await fetch(`${platform!.apps.httpUrl('notifications-subgraph')}/health`);
    return ((await response.json()) as { subscriptions: number }).subscriptions;
  };

  it('ends the upstream subscription as soon as the client completes its own or closes, with no event in between', async () => {
    const before = await held();
    const user = await signUp(gateway, 'quiet@example.com');
    const raw = await signedInSocket(gateway, user);
    for (let cycle = 0; cycle < 3; cycle++) {
      subscribe(raw, `q${cycle}`);
      await eventually(async () => expect(await held()).toBe(before + 1));
      complete(raw, `q${cycle}`);
      await eventually(async () => expect(await held()).toBe(before));
    }
    for (let n = 0; n < SUBSCRIPTIONS_PER_USER; n++) subscribe(raw, `kept${n}`);
    await eventually(async () => expect(await held()).toBe(before + SUBSCRIPTIONS_PER_USER));
    raw.socket.close();
    await raw.closed;
    await eventually(async () => expect(await held()).toBe(before));
  });

  it('gives a subscription’s slot back as soon as the client completes it', async () => {
    const user = await signUp(gateway, 'cycles@example.com');
    const raw = await signedInSocket(gateway, user);
    for (let cycle = 0; cycle < 25; cycle++) {
      subscribe(raw, `s${cycle}`);
      complete(raw, `s${cycle}`);
    }
    for (let n = 0; n < SUBSCRIPTIONS_PER_USER; n++) subscribe(raw, `kept${n}`);
    subscribe(raw, 'one-too-many');
    await eventually(() => expect(refused(raw).map((m) => m.id)).toEqual(['one-too-many']));
    raw.socket.close();
  });

  it('runs one subscription per id when a client reuses an id it just completed, and ends it', async () => {
    // Nothing else of this file holds a subscription once its sockets closed.
    const before = 0;
    await eventually(async () => expect(await held()).toBe(before));
    const user = await signUp(gateway, 'reuse@example.com');
    const raw = await signedInSocket(gateway, user);
    // The gateway knows ADDED from here on (a subscription with it is parsed at once).
    subscribe(raw, 'known');
    await eventually(async () => expect(await held()).toBe(before + 1));
    complete(raw, 'known');
    await eventually(async () => expect(await held()).toBe(before));
    for (let round = 0; round < 5; round++) {
      const id = `r${round}`;
      // A text new to the gateway (charged before it is parsed), completed at once, then the
      // same id again with a text it knows: the first must not run beside the second (with a
      // slow Redis, subscription.server.spec.ts).
      raw.socket.send(
        JSON.stringify({
          id,
          type: 'subscribe',
          payload: { query: `subscription Reused${round} { notificationAdded { id } }` },
        }),
      );
      complete(raw, id);
      subscribe(raw, id);
      await eventually(async () => expect(await held()).toBeLessThanOrEqual(before + 1));
      complete(raw, id);
    }
    // Every subscription was completed: none runs upstream, and every slot is free again.
    await eventually(async () => expect(await held()).toBe(before));
    for (let n = 0; n < SUBSCRIPTIONS_PER_USER; n++) subscribe(raw, `kept${n}`);
    subscribe(raw, 'one-too-many');
    await eventually(() => expect(refused(raw).map((m) => m.id)).toEqual(['one-too-many']));
    await eventually(async () => expect(await held()).toBe(before + SUBSCRIPTIONS_PER_USER));
    raw.socket.close();
    await raw.closed;
    await eventually(async () => expect(await held()).toBe(before));
  });

  it('admits exactly the limit from a burst of subscribe messages', async () => {
    const user = await signUp(gateway, 'burst@example.com');
    const raw = await signedInSocket(gateway, user);
    for (let n = 0; n < 100; n++) subscribe(raw, `b${n}`);
    await eventually(() => expect(refused(raw)).toHaveLength(100 - SUBSCRIPTIONS_PER_USER));
    raw.socket.close();
  });

  it('gives the slots back when the connection closes', async () => {
    const user = await signUp(gateway, 'reconnect@example.com');
    for (let round = 0; round < 3; round++) {
      const raw = await signedInSocket(gateway, user);
      for (let n = 0; n < SUBSCRIPTIONS_PER_USER; n++) subscribe(raw, `r${n}`);
      subscribe(raw, 'extra');
      await eventually(() => expect(refused(raw).map((m) => m.id)).toEqual(['extra']));
      raw.socket.close();
      await raw.closed;
    }
  });

  it('caps one user’s connections, and frees a place when one closes', async () => {
    const user = await signUp(gateway, 'many@example.com');
    const sockets = [];
    for (let n = 0; n < CONNECTIONS_PER_USER; n++)
      sockets.push(await signedInSocket(gateway, user));
    const extra = await open(gateway);
    extra.socket.send(
      JSON.stringify({
        type: 'connection_init',
        payload: { authorization: `Bearer ${user.token}` },
      }),
    );
    expect((await extra.closed).code).toBe(4429);

    sockets[0]!.socket.close();
    await sockets[0]!.closed;
    await eventually(async () => {
      const again = await signedInSocket(gateway, user);
      sockets.push(again);
    });
    for (const raw of sockets) raw.socket.close();
  });

  it('closes a connection whose first message is too big before reading more', async () => {
    const raw = await open(gateway);
    raw.socket.send(
      JSON.stringify({ type: 'connection_init', payload: { authorization: 'x'.repeat(50_000) } }),
    );
    expect((await raw.closed).code).toBe(1009);
  });

  it('refuses a frame larger than the message limit even after sign-in', async () => {
    const user = await signUp(gateway, 'huge@example.com');
    const raw = await signedInSocket(gateway, user);
    raw.socket.send(
      JSON.stringify({ id: 'h', type: 'subscribe', payload: { query: 'x'.repeat(200_000) } }),
    );
    expect((await raw.closed).code).toBe(1009);
  });
});
