import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import type { Logger } from '@platform/logger';
import type { UpstreamConnectionParams } from '@platform/subgraph';
import { subgraphInstances } from '../subgraph.fetcher';

export interface UpstreamPayload {
  query: string;
  operationName: string | undefined;
  variables: Record<string, unknown>;
  extensions: Record<string, unknown>;
}

/**
 * Subscriptions to subgraphs over graphql-ws: one connection per subgraph for this whole
 * gateway instance, carrying every client subscription (each with its user's token). The
 * connection is opened on first use, kept alive with pings and re-established after a drop
 * (its subscriptions are re-sent). Events in between are missed, so a drop of a connection
 * that was up is reported (`onDrop`): the subscription server closes the clients whose
 * subscriptions it carried with 1012 (Service Restart), and they reconnect and catch up by
 * querying `notifications(after:)`, as after any reconnect. A subgraph with several instances
 * (a comma-separated URL list) is connected to round-robin: each (re)connection goes to the
 * next, so one that died or is draining is left for a live one.
 */
export interface UpstreamSubscriptions {
  subscribe(
    subgraph: string,
    payload: UpstreamPayload,
  ): AsyncIterableIterator<FormattedExecutionResult>;
  /** Open upstream connections (one per subgraph in use). */
  connections(): number;
  /**
   * Called when a subgraph's connection that was up closes (not at `close()`): the events
   * of its subscriptions until it is re-established are lost.
   */
  onDrop(listener: (subgraph: string) => void): void;
  close(): Promise<void>;
}

export function createUpstreamSubscriptions(options: {
  /** HTTP URLs of the subgraphs, by name. */
  urls: ReadonlyMap<string, string>;
  internalToken: string;
  logger: Logger;
}): UpstreamSubscriptions {
  const clients = new Map<string, Client>();
  const { logger } = options;
  const dropListeners: ((subgraph: string) => void)[] = [];
  let closing = false;

  function clientFor(subgraph: string): Client {
    const existing = clients.get(subgraph);
    if (existing) return existing;
    const urls = subgraphInstances(options.urls.get(subgraph) ?? '').map((url) =>
      url.replace(/^http/, 'ws'),
    );
    if (urls.length === 0) throw new Error(`no URL for subgraph ${subgraph}`);
    let next = 0;
    /** Whether the current connection was acknowledged (and carried subscriptions). */
    let up = false;
    const connectionParams: UpstreamConnectionParams & Record<string, unknown> = {
      internalToken: options.internalToken,
    };
    const client = createClient({
      url: () => {
        const url = urls[next % urls.length] as string;
        next += 1;
        return url;
      },
      webSocketImpl: WebSocket,
      connectionParams,
      lazy: true,
      // Once open, kept open with no subscription on it: closing it when the last one ends
      // (graphql-ws's default) would look like a lost upstream to `closed` below, and close the
      // clients whose new subscriptions were on their way to it. (The longest timer Node has.)
      lazyCloseTimeout: 2 ** 31 - 1,
      keepAlive: 10_000,
      retryAttempts: Number.POSITIVE_INFINITY,
      // Quicker than graphql-ws's default (1 s and more, doubling, plus up to 3 s): another
      // instance may be up already. 250 ms doubling to 5 s, with jitter.
      retryWait: (retries) =>
        new Promise((resolve) =>
          setTimeout(resolve, Math.min(250 * 2 ** retries, 5_000) * (0.5 + Math.random() / 2)),
        ),
      shouldRetry: () => true,
      on: {
        connected: () => {
          up = true;
          logger.info({ subgraph }, 'upstream subscription connection open');
        },
        closed: (event) => {
          const code = (event as { code?: number } | undefined)?.code;
          logger.debug({ subgraph, code }, 'upstream closed');
          const wasUp = up;
          up = false;
          if (!wasUp || closing) return;
          logger.warn({ subgraph, code }, 'upstream subscription connection lost');
          for (const listener of dropListeners) listener(subgraph);
        },
      },
    });
    clients.set(subgraph, client);
    return client;
  }

  return {
    subscribe(subgraph, payload) {
      return clientFor(subgraph).iterate(payload);
    },
    connections: () => clients.size,
    onDrop(listener) {
      dropListeners.push(listener);
    },
    async close() {
      closing = true;
      await Promise.all([...clients.values()].map((client) => Promise.resolve(client.dispose())));
      clients.clear();
    },
  };
}
