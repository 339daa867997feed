import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { buildSchema } from 'graphql';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createLogger } from '@platform/logger';
import { serveGraphqlWs } from './graphql-ws.transport';

const schema = buildSchema('type Query { ok: Boolean } type Subscription { tick: Int }');

/** A server with the transport, its log lines (JSON) kept; `onSubscribe` fails unless `serve`. */
async function startServer(keepAliveMs = 0, serve = false) {
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger({
    name: 'graphql-ws-transport-test',
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        done();
      },
    }),
  });
  const server = createServer();
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: 1_024 });
  const transport = serveGraphqlWs(
    {
      schema,
      onSubscribe: () => {
        if (!serve) throw new Error('the server broke');
      },
      roots: { subscription: { tick: () => new Promise(() => undefined) } },
    },
    wss,
    logger,
    keepAliveMs,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/graphql`,
    /** Log lines at error level (50) or above. */
    errors: () => lines.filter((line) => line.level >= 50),
    async stop() {
      await transport.dispose();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A client past `connection_init`; `autoPong: false` makes one that never answers a ping. */
async function connect(url: string, options: { autoPong?: boolean } = {}) {
  const socket = new WebSocket(url, 'graphql-transport-ws', options);
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  let pings = 0;
  socket.on('ping', () => pings++);
  await new Promise((resolve) => socket.once('open', resolve));
  const acknowledged = new Promise((resolve) => socket.once('message', resolve));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await acknowledged;
  return { socket, closed, pings: () => pings };
}

describe('serveGraphqlWs', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('closes 4400 on a message only a server may send, and logs no error', async () => {
    const server = await startServer();
    stops.push(server.stop);
    const console = vi.spyOn(globalThis.console, 'error').mockImplementation(() => undefined);
    try {
      for (const text of [
        JSON.stringify({ id: 'x', type: 'next', payload: { data: {} } }),
        JSON.stringify({ id: 'x', type: 'error', payload: [{ message: 'no' }] }),
        JSON.stringify({ type: 'connection_ack' }),
      ]) {
        const client = await connect(server.url);
        client.socket.send(text);
        expect(await client.closed).toBe(4400);
      }
      const client = await connect(server.url);
      client.socket.send('x'.repeat(2_000)); // over maxPayload: ws closes it itself
      expect(await client.closed).toBe(1009);
      expect(server.errors()).toEqual([]);
      expect(console).not.toHaveBeenCalled();
    } finally {
      console.mockRestore();
    }
  });

  it('closes 4409 on a reused id however long the id, which its close reason cannot hold', async () => {
    const server = await startServer(0, true);
    stops.push(server.stop);
    const client = await connect(server.url);
    const subscribe = {
      id: 'L'.repeat(200),
      type: 'subscribe',
      payload: { query: 'subscription { tick }' },
    };
    client.socket.send(JSON.stringify(subscribe));
    client.socket.send(JSON.stringify(subscribe));
    expect(await client.closed).toBe(4409);
    expect(server.errors()).toEqual([]);
  });

  it("closes 4500 when the server itself fails on a client's message, and logs it", async () => {
    const server = await startServer();
    stops.push(server.stop);
    const client = await connect(server.url);
    client.socket.send(
      JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { tick }' } }),
    );
    expect(await client.closed).toBe(4500);
    expect(server.errors()).toEqual([expect.objectContaining({ msg: 'WebSocket message failed' })]);
  });

  it('drops a connection that stops answering pings, and keeps one that answers', async () => {
    const server = await startServer(250);
    stops.push(server.stop);
    const answering = await connect(server.url);
    const silent = await connect(server.url, { autoPong: false });
    expect(await silent.closed).toBe(1006); // terminated: no close frame
    await vi.waitFor(() => expect(answering.pings()).toBeGreaterThan(3), { timeout: 10_000 });
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    answering.socket.close();
  });
});
