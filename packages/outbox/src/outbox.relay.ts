import type { Logger } from '@platform/logger';
import { outboxMetrics } from './outbox.metrics';
import type { MessageBroker } from '@platform/messaging';
import { prepared, type Database } from '@platform/db';
import { contextFromHeaders, inSpan, SpanKind } from '@platform/telemetry';
import { qualified, type OutboxEnvelope } from './outbox';

export interface OutboxRelayOptions {
  db: Pick<Database, '$run'>;
  /** The Postgres schema whose `outbox_events` this relay drains. */
  schema: string;
  broker: Pick<MessageBroker, 'publish'>;
  logger: Logger;
  /** How often to look for events when nobody kicked the relay. */
  pollIntervalMs?: number;
  batchSize?: number;
  /**
   * How long a relay holds the events it is publishing. Another instance takes them over only
   * after this, so a relay that died mid-batch delays its events by at most this much.
   */
  claimMs?: number;
}

export interface OutboxRelay {
  /** Asks for a run now, e.g. right after a transaction that enqueued an event committed. */
  kick(): void;
  /** Publishes everything pending, once; resolves to how many were published. */
  drain(): Promise<number>;
  stop(): Promise<void>;
}

const KICK_COALESCE_MS = 5;

interface OutboxRow {
  id: string;
  envelope: OutboxEnvelope;
  /** The lease's end as PostgreSQL wrote it: the same for the whole batch, its claim token. */
  lease: string;
}

/**
 * Publishes outbox events in the order they were written (`seq`: the events of one record are
 * written under its lock, so this is their causal order; creation times from several replicas'
 * clocks, or equal to the millisecond, are not) and marks them published. A batch is claimed
 * with a lease (FOR UPDATE SKIP LOCKED inside the claiming UPDATE), so several instances of a
 * service can run relays side by side without holding a transaction open while the broker
 * confirms. A crash between publishing and marking republishes the batch once the lease
 * lapses: delivery is at least once and consumers deduplicate by event id.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, logger, broker } = options;
  const table = qualified(options.schema, 'outbox_events');
  const claim = prepared(
    `outbox-claim:${options.schema}`,
    `WITH claimed AS (
       UPDATE ${table} SET claimed_until = now() + $2::integer * interval '1 millisecond'
       WHERE id IN (
         SELECT id FROM ${table}
         WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id, envelope, seq, claimed_until)
     SELECT id::text AS id, envelope, claimed_until::text AS lease
       FROM claimed ORDER BY seq`,
  );
  const settle = prepared(
    `outbox-settle:${options.schema}`,
    // Only rows still under this relay's lease: one that outlived its lease was taken over.
    `UPDATE ${table} SET claimed_until = NULL,
       published_at = CASE WHEN id = ANY($1::uuid[]) THEN now() ELSE published_at END
     WHERE id = ANY($2::uuid[]) AND claimed_until = $3::timestamptz`,
  );
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const batchSize = options.batchSize ?? 100;
  const claimMs = options.claimMs ?? 30_000;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error('outbox relay: batchSize must be a positive integer');
  if (!Number.isInteger(claimMs) || claimMs < 1_000)
    throw new Error('outbox relay: claimMs must be an integer of at least 1000');
  const metrics = outboxMetrics(options.schema, db);
  let running: Promise<number> | undefined;
  let again = false;
  let stopped = false;
  let failures = 0;
  let failingSince: number | undefined;

  async function publishBatch(): Promise<number> {
    // Claim a batch with a lease (one statement, no transaction held open while publishing),
    // publish it, then mark what the broker confirmed and release the rest (one statement).
    const rows = await db.$run<OutboxRow>(claim, [batchSize, claimMs]);
    if (rows.length === 0) return 0;
    // All at once on the one channel (it keeps their order); each is confirmed on its own,
    // and only the confirmed ones are marked published.
    const outcomes = await Promise.allSettled(rows.map(publishRow));
    const published = rows.filter((_, index) => outcomes[index]?.status === 'fulfilled');
    await db.$run(settle, [
      published.map((row) => row.id),
      rows.map((row) => row.id),
      rows[0]?.lease,
    ]);
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
    return published.length;
  }

  /**
   * Publishes one row in a PRODUCER span that continues the trace of the operation that wrote
   * it (the context stored in the row); the broker sends this span's context as headers.
   */
  function publishRow({ envelope: { trace, ...event } }: OutboxRow): Promise<void> {
    if (!trace) return broker.publish(event);
    return inSpan(
      `${event.type} publish`,
      {
        kind: SpanKind.PRODUCER,
        parent: contextFromHeaders(trace),
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'send',
          'messaging.rabbitmq.destination.routing_key': event.type,
          'messaging.message.id': event.id,
          'platform.outbox.schema': options.schema,
        },
      },
      () => broker.publish(event),
    );
  }

  /** Publishes batch after batch until one is short, or until `abandoned` is aborted. */
  async function drain(abandoned?: AbortSignal): Promise<number> {
    let total = 0;
    for (;;) {
      if (abandoned?.aborted) return total;
      const count = await publishBatch();
      total += count;
      if (count < batchSize) return total;
    }
  }

  /**
   * A run that outlives its claim's lease (a database or broker that stopped answering
   * without failing) no longer holds up the relay: the next poll starts another. That is
   * safe, as a settle only touches rows still under its own lease, and the abandoned run
   * claims no further batch once it wakes up, so two runs never drain side by side.
   */
  function bounded(work: (abandoned: AbortSignal) => Promise<number>): Promise<number> {
    const abandon = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandon.abort();
        reject(new Error(`outbox relay run took longer than ${claimMs} ms`));
      }, claimMs);
      timer.unref();
    });
    const running = work(abandon.signal);
    running.catch(() => undefined); // its failure after the timeout was already reported
    return Promise.race([running, expired]).finally(() => clearTimeout(timer));
  }

  function run(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    const current = bounded(drain);
    running = current;
    current
      .then(
        (count) => {
          if (failingSince !== undefined)
            logger.info(
              { schema: options.schema, failures, outageMs: Date.now() - failingSince },
              'outbox relay recovered; publishing what waited',
            );
          failures = 0;
          failingSince = undefined;
          metrics.published(count);
          if (count > 0) logger.debug({ count, schema: options.schema }, 'outbox events published');
        },
        (error: unknown) => {
          failures += 1;
          metrics.failed();
          // Once per outage (the database or the broker), not once per poll; the recovery
          // says how long it lasted. Events wait in the table meanwhile.
          if (failingSince === undefined) {
            failingSince = Date.now();
            logger.error(
              { err: error, schema: options.schema },
              'outbox relay could not publish; retrying every poll until it can',
            );
          }
        },
      )
      .finally(() => {
        if (running === current) running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  }

  const timer = setInterval(run, pollIntervalMs);
  timer.unref();
  run();

  // Kicks within a few milliseconds share one run: under load, one transaction publishes
  // many events instead of one each.
  let kicked: NodeJS.Timeout | undefined;
  function kick(): void {
    kicked ??= setTimeout(() => {
      kicked = undefined;
      run();
    }, KICK_COALESCE_MS);
  }

  return {
    kick,
    drain,
    async stop() {
      stopped = true;
      metrics.stop();
      clearTimeout(kicked);
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
