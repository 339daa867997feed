import type { Database } from '@platform/db';
import { gauge } from '@platform/metrics';
import type { DependencyMonitor } from './dependency-monitor';

const up = gauge({
  name: 'dependency_up',
  help: 'Whether a dependency answered its last probe (1) or not (0), by dependency.',
  labelNames: ['dependency'] as const,
});

/** Reports each dependency the monitor probes as `dependency_up{dependency}`. */
export function exportDependencyStatus(monitor: DependencyMonitor): void {
  monitor.onChange((name, isUp) => up.labels(name).set(isUp ? 1 : 0));
}

let pooled: Pick<Database, '$poolStats'> | undefined;

gauge({
  name: 'db_pool_connections',
  help: 'PostgreSQL connections in this process pool, by state (busy or idle).',
  labelNames: ['state'] as const,
  collect() {
    if (!pooled) return;
    const { total, idle } = pooled.$poolStats();
    this.labels('busy').set(total - idle);
    this.labels('idle').set(idle);
  },
});
gauge({
  name: 'db_pool_waiting_queries',
  help: 'Queries waiting for a free PostgreSQL connection in this process pool.',
  collect() {
    if (pooled) this.set(pooled.$poolStats().waiting);
  },
});

/** Reports the database's pool on every scrape (`db_pool_*`). */
export function exportPoolStats(db: Pick<Database, '$poolStats'>): void {
  pooled = db;
}
