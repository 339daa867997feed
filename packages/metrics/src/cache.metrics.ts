import { counter } from './registry';

const lookups = counter({
  name: 'cache_lookups_total',
  help: 'Cache lookups by cache and result (hit or miss).',
  labelNames: ['cache', 'result'] as const,
});

/** The hit and miss counters of one cache (`cache_lookups_total{cache}`), bound once. */
export function cacheMetrics(cache: string): {
  hit(count?: number): void;
  miss(count?: number): void;
} {
  const hits = lookups.labels(cache, 'hit');
  const misses = lookups.labels(cache, 'miss');
  return {
    hit: (count = 1) => hits.inc(count),
    miss: (count = 1) => misses.inc(count),
  };
}
