export {
  counter,
  gauge,
  histogram,
  initMetrics,
  registry,
  secondsSince,
  DURATION_BUCKETS,
} from './registry';
export { boundedLabel } from './bounded-label';
export { appNameOf, serveMetrics, type MetricsServer } from './metrics.server';
export { cacheMetrics } from './cache.metrics';
export { exportDependencyChecks } from './dependency.metrics';
