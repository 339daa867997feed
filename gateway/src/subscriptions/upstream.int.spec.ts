import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createLogger } from '@platform/logger';
import { createUpstreamSubscriptions } from './upstream';

const logger = createLogger({ name: 'upstream-test', level: 'silent' });

/**
 * A subgraph's graphql-ws endpoint on a free port, speaking the protocol by hand: it acks
 * the connection and sends `{ ticks: n }` every 20 ms to each subscription.
 */
async function startSubgraph(): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer();
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const timers = new Set<NodeJS.Timeout>();
  wss.on('connection', (socket) => {
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string; id?: string };
      if (message.type === 'connection_init')
        socket.send(JSON.stringify({ type: 'connection_ack' }));
      if (message.type === 'subscribe') {
        let tick = 0;
        const timer = setInterval(() => {
          const payload = { data: { ticks: tick++ } };
          socket.send(JSON.stringify({ type: 'next', id: message.id, payload }));
        }, 20);
        timers.add(timer);
        socket.once('close', () => clearInterval(timer));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      // Every client closed with 1001, as a draining subgraph does.
      for (const client of wss.clients) client.close(1001, 'Going away');
      await new Promise((resolve) => wss.close(resolve));
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe(createUpstreamSubscriptions.name, () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  it('reports the drop of a connection that was up, and moves to the other instance', async () => {
    const [a, b] = [await startSubgraph(), await startSubgraph()];
    stops.push(() => b.stop());
    const upstream = createUpstreamSubscriptions({
      urls: new Map([['live', `${a.url},${b.url}`]]),
      internalToken: 'x'.repeat(32),
      logger,
    });
    stops.push(() => upstream.close());
    const dropped: string[] = [];
    upstream.onDrop((subgraph) => dropped.push(subgraph));
    const events = upstream.subscribe('live', {
      query: 'subscription { ticks }',
      operationName: undefined,
      variables: {},
      extensions: {},
    });
    expect((await events.next()).value).toEqual({ data: { ticks: 0 } });
    expect(dropped).toEqual([]);

    await a.stop(); // the instance carrying the connection goes away
    // The subscription carries on through the other instance (re-sent there, from 0)...
    let next = await events.next();
    while ((next.value as { data: { ticks: number } }).data.ticks !== 0) next = await events.next();
    // ...and the drop was reported once, so its clients can be told to catch up.
    expect(dropped).toEqual(['live']);
    await events.return?.(undefined);
  });

  it('reports nothing when it closes itself', async () => {
    const a = await startSubgraph();
    stops.push(() => a.stop());
    const upstream = createUpstreamSubscriptions({
      urls: new Map([['live', a.url]]),
      internalToken: 'x'.repeat(32),
      logger,
    });
    const dropped: string[] = [];
    upstream.onDrop((subgraph) => dropped.push(subgraph));
    const events = upstream.subscribe('live', {
      query: 'subscription { ticks }',
      operationName: undefined,
      variables: {},
      extensions: {},
    });
    await events.next();
    await upstream.close();
    expect(dropped).toEqual([]);
  });
});
