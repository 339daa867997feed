import { prepared, type Database } from '@platform/db';
import { counter, gauge } from '@platform/metrics';
import { qualified } from './outbox';

const published = counter({
  name: 'outbox_events_published_total',
  help: 'Outbox events the relay published to RabbitMQ (broker-confirmed), by schema.',
  labelNames: ['schema'] as const,
});
const relayErrors = counter({
  name: 'outbox_relay_errors_total',
  help: 'Relay runs that failed (database or broker unavailable), by schema.',
  labelNames: ['schema'] as const,
});

interface Backlog {
  count: number;
  age: number;
}

/** The relays of this process, by schema: read on every scrape. */
const sources = new Map<string, () => Promise<Backlog>>();

async function eachBacklog(set: (schema: string, backlog: Backlog) => void): Promise<void> {
  await Promise.all(
    [...sources].map(async ([schema, read]) => {
      try {
        set(schema, await read());
      } catch {
        // The database is down: the gauge keeps its last value; dependency_up says why.
      }
    }),
  );
}

gauge({
  name: 'outbox_backlog_events',
  help: 'Outbox events not yet published, by schema (read from PostgreSQL on scrape).',
  labelNames: ['schema'] as const,
  async collect() {
    await eachBacklog((schema, { count }) => this.labels(schema).set(count));
  },
});
gauge({
  name: 'outbox_oldest_event_age_seconds',
  help: 'Age of the oldest unpublished outbox event in seconds (0 when none), by schema.',
  labelNames: ['schema'] as const,
  async collect() {
    await eachBacklog((schema, { age }) => this.labels(schema).set(age));
  },
});

/** The counters of one schema's relay, and its backlog reported while it runs. */
export function outboxMetrics(schema: string, db: Pick<Database, '$run'>) {
  const backlog = prepared(
    `outbox-backlog:${schema}`,
    `SELECT count(*)::integer AS count,
       COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS age
       FROM ${qualified(schema, 'outbox_events')} WHERE published_at IS NULL`,
  );
  // Both gauges read the same sample within a scrape.
  let sample: { at: number; value: Promise<Backlog> } | undefined;
  sources.set(schema, () => {
    if (!sample || performance.now() - sample.at > 1_000) {
      const value = db.$run<Backlog>(backlog, []).then(([row]) => row ?? { count: 0, age: 0 });
      value.catch(() => undefined);
      sample = { at: performance.now(), value };
    }
    return sample.value;
  });
  const publishedChild = published.labels(schema);
  const errorsChild = relayErrors.labels(schema);
  return {
    published: (count: number) => publishedChild.inc(count),
    failed: () => errorsChild.inc(),
    stop: () => void sources.delete(schema),
  };
}
