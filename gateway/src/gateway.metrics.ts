import { counter, gauge, histogram } from '@platform/metrics';

const fetches = counter({
  name: 'gateway_subgraph_fetches_total',
  help: 'Fetches the gateway made to a subgraph while executing query plans, by subgraph.',
  labelNames: ['subgraph'] as const,
});
const fetchErrors = counter({
  name: 'gateway_subgraph_fetch_errors_total',
  help: 'Subgraph fetches that failed or answered errors, by subgraph and error code.',
  labelNames: ['subgraph', 'code'] as const,
});
const fetchSeconds = histogram({
  name: 'gateway_subgraph_fetch_duration_seconds',
  help: 'Time a subgraph fetch took, in seconds, by subgraph.',
  labelNames: ['subgraph'] as const,
});

const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Counts and times the fetches to one subgraph (label children bound once). */
export function subgraphFetchRecorder(subgraph: string) {
  const count = fetches.labels(subgraph);
  const seconds = fetchSeconds.labels(subgraph);
  return {
    done(started: number, errorCodes: readonly unknown[]): void {
      count.inc();
      seconds.observe((performance.now() - started) / 1000);
      for (const code of errorCodes)
        fetchErrors.inc({
          subgraph,
          code: typeof code === 'string' && CODE.test(code) ? code : 'other',
        });
    },
  };
}

/** Open graphql-ws connections and active subscriptions, read on every scrape. */
export function exportSubscriptionGauges(server: {
  connections(): number;
  subscriptions(): number;
}): void {
  gauge({
    name: 'gateway_websocket_connections',
    help: 'Accepted graphql-ws connections open on this gateway instance.',
    collect() {
      this.set(server.connections());
    },
  });
  gauge({
    name: 'gateway_subscriptions_active',
    help: 'Subscriptions running on this gateway instance.',
    collect() {
      this.set(server.subscriptions());
    },
  });
}

/**
 * `dependency_up{dependency}` as the services report theirs: 1 while a dependency of the
 * gateway (each subgraph, each service, Redis) answers, asked on every scrape with the same
 * checks as `/ready` (each bounded by its timeout).
 */
export function exportDependencyStatus(
  dependencies: readonly { name: string; check: () => Promise<{ up: boolean }> }[],
): void {
  gauge({
    name: 'dependency_up',
    help: 'Whether a dependency answered its last probe (1) or not (0), by dependency.',
    labelNames: ['dependency'] as const,
    async collect() {
      const results = await Promise.all(
        dependencies.map(async (dependency) => {
          const health = await dependency.check().catch(() => ({ up: false }));
          return [dependency.name, health.up] as const;
        }),
      );
      for (const [name, up] of results) this.labels(name).set(up ? 1 : 0);
    },
  });
}
