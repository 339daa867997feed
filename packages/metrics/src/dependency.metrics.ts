import { gauge } from './registry';

/**
 * `dependency_up{dependency}` from readiness checks asked on every scrape (an app without a
 * background probe of its own: the subgraphs): 1 for each dependency the check reports up,
 * 0 for each it reports down. A check that throws reports nothing new.
 */
export function exportDependencyChecks(check: () => Promise<Record<string, boolean>>): void {
  gauge({
    name: 'dependency_up',
    help: 'Whether a dependency answered its last probe (1) or not (0), by dependency.',
    labelNames: ['dependency'] as const,
    async collect() {
      const status: Record<string, boolean> = await check().catch(() => ({}));
      for (const [name, up] of Object.entries(status)) this.labels(name).set(up ? 1 : 0);
    },
  });
}
