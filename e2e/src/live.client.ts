import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';

/** A graphql-ws connection to the gateway, as a browser client would open one. */
export interface LiveClient {
  client: Client;
  /** Resolves with the close code once the server closes the connection. */
  closed: Promise<{ code: number; reason: string }>;
  /** Subscribes; every result (or error) lands in the returned list. */
  subscribe(
    query: string,
    variables?: Record<string, unknown>,
    operationName?: string,
  ): LiveSubscription;
  dispose(): Promise<void>;
}

export interface LiveSubscription {
  results: FormattedExecutionResult[];
  errors: unknown[];
  completed: boolean;
  /** Resolves once `count` results have arrived. */
  next(count: number, timeoutMs?: number): Promise<FormattedExecutionResult[]>;
  /** Resolves with the first result (already arrived or still to come) that `matches`. */
  received(
    matches: (result: FormattedExecutionResult) => boolean,
    timeoutMs?: number,
  ): Promise<FormattedExecutionResult>;
  unsubscribe(): void;
}

export function connectLive(gatewayUrl: string, token: string | undefined): LiveClient {
  let resolveClosed: (value: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>(
    (resolve) => (resolveClosed = resolve),
  );
  const client = createClient({
    url: `${gatewayUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    // The close is what some tests wait for (see `closed`), not an error to print.
    onNonLazyError: () => undefined,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        resolveClosed({ code, reason: String(reason) });
      },
    },
  });
  return {
    client,
    closed,
    subscribe(query, variables, operationName) {
      const results: FormattedExecutionResult[] = [];
      const errors: unknown[] = [];
      const waiters: (() => void)[] = [];
      /** Resolves with what `found` gives once it gives something, checked at every result. */
      const waitUntil = <T>(found: () => T | undefined, missing: () => string, timeoutMs: number) =>
        new Promise<T>((resolve, reject) => {
          const check = () => {
            const value = found();
            if (value === undefined) return false;
            clearTimeout(timer);
            resolve(value);
            return true;
          };
          const timer = setTimeout(
            () => reject(new Error(`${missing()}: ${JSON.stringify({ results, errors })}`)),
            timeoutMs,
          );
          if (!check()) waiters.push(() => void check());
        });
      const subscription: LiveSubscription = {
        results,
        errors,
        completed: false,
        next(count, timeoutMs = 10_000) {
          return waitUntil(
            () => (results.length >= count ? results.slice(0, count) : undefined),
            () => `got ${results.length} of ${count}`,
            timeoutMs,
          );
        },
        received(matches, timeoutMs = 10_000) {
          return waitUntil(
            () => results.find(matches),
            () => 'no matching result',
            timeoutMs,
          );
        },
        unsubscribe: () => unsubscribe(),
      };
      const unsubscribe = client.subscribe(
        { query, variables, ...(operationName ? { operationName } : {}) },
        {
          next: (result) => {
            results.push(result as FormattedExecutionResult);
            for (const wake of waiters) wake();
          },
          error: (error) => errors.push(error),
          complete: () => (subscription.completed = true),
        },
      );
      return subscription;
    },
    dispose: () => client.dispose() as Promise<void>,
  };
}
