import type { EventEnvelope } from '@platform/events';
import type { Logger } from '@platform/logger';
import type { MessageBroker } from '@platform/messaging';
import { qualified, type SqlExecutor } from './outbox';

interface TransactionRunner extends SqlExecutor {
  $transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
}

export interface OutboxRelayOptions {
  db: TransactionRunner;
  /** The Postgres schema whose `outbox_events` this relay drains. */
  schema: string;
  broker: Pick<MessageBroker, 'publish'>;
  logger: Logger;
  /** How often to look for events when nobody kicked the relay. */
  pollIntervalMs?: number;
  batchSize?: number;
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
  envelope: EventEnvelope;
}

/**
 * Publishes outbox events in order of creation and marks them published. Rows are claimed
 * with FOR UPDATE SKIP LOCKED, so several instances of a service can run relays side by
 * side. A crash between publish and commit republishes the batch: delivery is at least
 * once and consumers deduplicate by event id.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, logger, broker } = options;
  const table = qualified(options.schema, 'outbox_events');
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const batchSize = options.batchSize ?? 100;
  let running: Promise<number> | undefined;
  let again = false;
  let stopped = false;
  let failures = 0;

  async function publishBatch(): Promise<number> {
    const result = await db.$transaction(async (tx) => {
      const rows = await tx.$queryRawUnsafe<OutboxRow[]>(
        `SELECT id::text AS id, envelope FROM ${table} WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        batchSize,
      );
      // All at once on the one channel (it keeps their order); each is confirmed on its own,
      // and only the confirmed ones are marked published.
      const outcomes = await Promise.allSettled(rows.map((row) => broker.publish(row.envelope)));
      const published = rows.filter((_, index) => outcomes[index]?.status === 'fulfilled');
      if (published.length > 0) {
        await tx.$executeRawUnsafe(
          `UPDATE ${table} SET published_at = now() WHERE id = ANY($1::uuid[])`,
          published.map((row) => row.id),
        );
      }
      const failure = outcomes.find((outcome) => outcome.status === 'rejected');
      return { count: published.length, failure };
    });
    // Reported after the commit, so the confirmed ones stay marked published.
    if (result.failure) throw result.failure.reason;
    return result.count;
  }

  async function drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const count = await publishBatch();
      total += count;
      if (count < batchSize) return total;
    }
  }

  function run(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain();
    running
      .then(
        (count) => {
          if (failures > 0) logger.info({ schema: options.schema }, 'outbox relay recovered');
          failures = 0;
          if (count > 0) logger.debug({ count, schema: options.schema }, 'outbox events published');
        },
        (error: unknown) => {
          failures += 1;
          // Report the first failure loudly and then every 30th, not once per poll.
          if (failures === 1 || failures % 30 === 0) {
            logger.error(
              { err: error, failures, schema: options.schema },
              'outbox relay could not publish; will retry',
            );
          }
        },
      )
      .finally(() => {
        running = undefined;
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
      clearTimeout(kicked);
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
