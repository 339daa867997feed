import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The dashboard and the alert rules use only metrics the apps export, as documented in
// docs/operations.md ("What to watch"; the metrics e2e test checks the apps against that table).

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

function documented(): Set<string> {
  const docs = read('docs/operations.md');
  const section = docs.slice(docs.indexOf('## What to watch'));
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(line.split('|')[1]?.trim() ?? '')?.[1];
    if (name) names.add(name);
  }
  return names;
}

/** Metric names in a PromQL expression (series selectors), without histogram suffixes. */
function metricsIn(expr: string): string[] {
  const plain = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...plain.matchAll(/\b([a-z][a-z0-9_]*)\s*(?=\{|\[|\))/g)].map((m) => m[1]!);
  return names.map((name) => name.replace(/_(bucket|sum|count)$/, ''));
}

/** Metrics the docs table mentions as family members of a documented one. */
const ALSO = new Set(['up']);

describe('deploy/grafana and deploy/prometheus', () => {
  const known = documented();

  it('documents the metrics', () => {
    expect(known.size).toBeGreaterThan(20);
  });

  it('alert rules parse, each with expr, for, severity and a summary, on documented metrics', () => {
    const rules = parse(read('deploy/prometheus/alerts.yaml')) as {
      groups: { name: string; rules: Record<string, unknown>[] }[];
    };
    const alerts = rules.groups.flatMap((group) => group.rules);
    expect(alerts.map((rule) => rule['alert'])).toEqual(
      expect.arrayContaining([
        'PlatformGraphQLErrorRate',
        'PlatformGraphQLLatencyP99',
        'PlatformOutboxStuck',
        'PlatformDeadLetters',
        'PlatformDependencyDown',
        'PlatformTargetDown',
      ]),
    );
    const docs = read('docs/operations.md');
    for (const rule of alerts) {
      const name = String(rule['alert']);
      expect(typeof rule['expr'], name).toBe('string');
      expect(rule['for'], name).toMatch(/^\d+m$/);
      expect((rule['labels'] as Record<string, string>)['severity'], name).toMatch(/^(page|warn)$/);
      expect((rule['annotations'] as Record<string, string>)['summary'], name).toBeTruthy();
      expect(docs, `${name} is in the docs' alert table`).toContain(`\`${name}\``);
      for (const metric of metricsIn(String(rule['expr'])))
        expect(known.has(metric) || ALSO.has(metric), `${name}: ${metric}`).toBe(true);
    }
  });

  it('the dashboard parses, and every panel queries documented metrics', () => {
    const dashboard = JSON.parse(read('deploy/grafana/platform.dashboard.json')) as {
      uid: string;
      panels: { type: string; title: string; targets?: { expr: string }[] }[];
    };
    expect(dashboard.uid).toBe('platform-overview');
    const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
    expect(panels.length).toBeGreaterThan(20);
    const used = new Set<string>();
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? [])
        for (const metric of metricsIn(target.expr)) {
          expect(known.has(metric), `${panel.title}: ${metric}`).toBe(true);
          used.add(metric);
        }
    }
    // The on-call essentials have a panel.
    for (const metric of [
      'graphql_operations_total',
      'gateway_subgraph_fetch_duration_seconds',
      'grpc_server_handling_seconds',
      'outbox_oldest_event_age_seconds',
      'queue_dead_letter_messages',
      'gateway_websocket_connections',
      'cache_lookups_total',
      'db_pool_connections',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(used, metric).toContain(metric);
  });
});
