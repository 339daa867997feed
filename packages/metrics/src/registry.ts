import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

/**
 * The process's one registry: every metric of the app (its own and those of the packages it
 * uses) is registered here and served on its `/metrics` port. Each app is its own process,
 * so one registry per process is one registry per app; `app` is a default label.
 */
export const registry = new Registry();

/** Latency buckets in seconds, from 1 ms to 10 s: gRPC calls, operations, fetches. */
export const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

// A module loaded twice in one process (tests) defines its metrics again: hand back the first.
function existing<T>(name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

export function counter<L extends string>(config: CounterConfiguration<L>): Counter<L> {
  return existing<Counter<L>>(config.name) ?? new Counter({ ...config, registers: [registry] });
}

export function gauge<L extends string>(config: GaugeConfiguration<L>): Gauge<L> {
  return existing<Gauge<L>>(config.name) ?? new Gauge({ ...config, registers: [registry] });
}

export function histogram<L extends string>(config: HistogramConfiguration<L>): Histogram<L> {
  return (
    existing<Histogram<L>>(config.name) ??
    new Histogram({ buckets: DURATION_BUCKETS, ...config, registers: [registry] })
  );
}

let defaultsFor: string | undefined;

/**
 * Labels every metric with `app` and starts Node's runtime metrics (event-loop lag, GC,
 * heap, CPU, handles): once per process.
 */
export function initMetrics(app: string): void {
  if (defaultsFor !== undefined) return;
  defaultsFor = app;
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
}

/** Seconds since `started` (a `performance.now()` reading). */
export const secondsSince = (started: number) => (performance.now() - started) / 1000;
