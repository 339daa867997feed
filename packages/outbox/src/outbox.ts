import type { EventEnvelope } from '@platform/events';
import { traceHeaders, type TraceCarrier } from '@platform/telemetry';

/**
 * An outbox row's envelope: the event, plus the W3C trace context of the operation that
 * caused it (`trace`, absent when tracing is off). The relay takes `trace` off before
 * publishing and sends it as message headers instead.
 */
export type OutboxEnvelope = EventEnvelope & { trace?: TraceCarrier };

/** The event with the current trace context, as written to the outbox row. */
export function outboxEnvelope(event: EventEnvelope): OutboxEnvelope {
  const trace = traceHeaders();
  return trace.traceparent ? { ...event, trace } : event;
}

/**
 * The part of a Prisma client (or transaction client) the outbox needs. Every service's
 * Postgres schema has the same two tables, `outbox_events` and `processed_events`.
 */
export interface SqlExecutor {
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
}

const SCHEMA_NAME = /^[a-z][a-z_]*$/;

export function qualified(schema: string, table: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  return `"${schema}"."${table}"`;
}

/**
 * The statement that writes one outbox row, to run alone or inside a larger statement (a CTE):
 * `sql` takes the event's id, type, envelope and time as four parameters numbered from
 * `firstParameter`, and `values(event)` gives them in that order. `from` (e.g.
 * `FROM created WHERE created.in_app`) writes the row only for the rows it selects.
 */
export interface OutboxInsert {
  readonly sql: string;
  values(event: EventEnvelope): [id: string, type: string, envelope: string, occurredAt: string];
}

export function createOutboxInsert(
  schema: string,
  options: { firstParameter?: number; from?: string } = {},
): OutboxInsert {
  const first = options.firstParameter ?? 1;
  const [id, type, envelope, occurredAt] = [0, 1, 2, 3].map((offset) => `$${first + offset}`);
  return {
    sql: `INSERT INTO ${qualified(schema, 'outbox_events')} (id, type, envelope, created_at)
     SELECT ${id}::uuid, ${type}, ${envelope}::jsonb, ${occurredAt}::timestamptz ${options.from ?? ''}`.trimEnd(),
    values: (event) => [
      event.id,
      event.type,
      JSON.stringify(outboxEnvelope(event)),
      event.occurredAt,
    ],
  };
}

/**
 * Writes an event to the owning service's outbox. Call it with the transaction client of the
 * state change, so the event exists if and only if the change committed.
 */
export async function enqueueEvent(
  tx: SqlExecutor,
  schema: string,
  event: EventEnvelope,
): Promise<void> {
  const insert = createOutboxInsert(schema);
  await tx.$executeRawUnsafe(insert.sql, ...insert.values(event));
}

/**
 * Records that `consumer` handled `eventId`, inside the transaction of the effect. Returns
 * false if it already had: the caller then skips the effect (duplicate delivery).
 */
export async function processOnce(
  tx: SqlExecutor,
  schema: string,
  consumer: string,
  eventId: string,
): Promise<boolean> {
  const inserted = await tx.$executeRawUnsafe(
    `INSERT INTO ${qualified(schema, 'processed_events')} (consumer, event_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING`,
    consumer,
    eventId,
  );
  return inserted === 1;
}
