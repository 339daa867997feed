import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Prisma, PrismaClient } from './generated/client';

export * from './generated/client';

export interface DatabaseOptions {
  databaseUrl: string;
  /** Connections in this process's pool. */
  poolSize?: number;
  /** Told when an idle pooled connection fails (the pool drops it and opens another). */
  onPoolError?: (error: Error) => void;
  /**
   * Longest wait for a connection: to open one, or for one of the pool's to be free. Past it
   * the query fails ("timeout exceeded when trying to connect").
   */
  connectionTimeoutMs?: number;
  /**
   * Longest wait for a statement's answer, past the callers' own deadlines (gRPC: 5 s): a
   * connection that silently stops answering (a black-holed network) fails its queries and
   * is dropped instead of holding them, and its pool slot, for good.
   */
  queryTimeoutMs?: number;
}

/**
 * A statement a hot path runs often, by name: each pooled connection parses and plans it once
 * and then only binds and executes it (Prisma's raw queries are parsed and planned on every
 * call, and cost several times the CPU on both sides).
 */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

const statementNames = new Map<string, string>();

/** Declares a prepared statement; a name stands for one text only. */
export function prepared(name: string, text: string): PreparedStatement {
  const known = statementNames.get(name);
  if (known !== undefined && known !== text)
    throw new Error(`prepared statement ${name} is already declared with another text`);
  statementNames.set(name, text);
  return { name, text };
}

/** Prisma Client plus prepared statements on the same connection pool. */
export interface Database extends PrismaClient {
  /** Runs a prepared statement; resolves to its rows (none for a statement without RETURNING). */
  $run<T>(statement: PreparedStatement, values: readonly unknown[]): Promise<T[]>;
  /** The connection pool's counters now (for metrics): open, idle, and callers waiting. */
  $poolStats(): PoolStats;
}

export interface PoolStats {
  /** Connections open (busy or idle). */
  total: number;
  idle: number;
  /** Queries waiting for a connection to be free. */
  waiting: number;
}

/**
 * Prisma Client over the `pg` driver adapter (no native engine needed), connected: fails
 * with a clear message when PostgreSQL cannot be reached.
 *
 * Through an outage later on, queries fail within a bounded time (at once when connections
 * are refused or dropped; `connectionTimeoutMs` or `queryTimeoutMs` when the network goes
 * silent) with errors `isDependencyOutage` (@platform/errors) recognises, so callers answer
 * SERVICE_UNAVAILABLE; broken connections leave the pool, and new ones are opened as soon as
 * PostgreSQL answers again: nothing needs a restart.
 */
export async function connectDatabase(options: DatabaseOptions): Promise<Database> {
  const client = createPrismaClient(options);
  try {
    await client.$queryRawUnsafe('SELECT 1');
  } catch (error) {
    await client.$disconnect().catch(() => undefined);
    throw new Error(`PostgreSQL is unreachable at ${new URL(options.databaseUrl).host}`, {
      cause: error,
    });
  }
  return client;
}

/** Prisma Client over the `pg` driver adapter (no native engine needed). */
export function createPrismaClient(options: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 3_000,
    query_timeout: options.queryTimeoutMs ?? 10_000,
    // Idle connections a firewall or failover cut silently are noticed by the kernel.
    keepAlive: true,
  });
  // Without a listener, an idle connection's error would end the process.
  pool.on('error', (error) => options.onPoolError?.(error));
  // Prisma ends the pool on $disconnect.
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  const client = new PrismaClient({ adapter });
  const transaction = client.$transaction.bind(client);
  const slots = createSlots(transactionLimit(options.poolSize ?? 10));
  return Object.assign(client, {
    // Interactive transactions (a function) take a slot first; a batch of statements does not.
    $transaction: ((input: unknown, txOptions?: { maxWait?: number }) =>
      typeof input === 'function'
        ? slots.run(txOptions?.maxWait ?? TRANSACTION_MAX_WAIT_MS, () =>
            transaction(input as never, txOptions as never),
          )
        : transaction(input as never, txOptions as never)) as PrismaClient['$transaction'],
    async $run<T>(statement: PreparedStatement, values: readonly unknown[]): Promise<T[]> {
      const result = await pool.query({
        name: statement.name,
        text: statement.text,
        values: [...values],
      });
      return result.rows as T[];
    },
    $poolStats: (): PoolStats => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
    }),
  });
}

/**
 * How long an interactive transaction may wait for its turn when its options set no `maxWait`:
 * as long as one may last (Prisma's default `timeout`), so a burst queues rather than fails.
 */
const TRANSACTION_MAX_WAIT_MS = 5_000;

/**
 * How many interactive transactions may be open at once: half the pool. An open transaction
 * holds a connection, and its work may read through the client meanwhile (a check, an audit
 * entry) and so need another: with every connection held by a transaction, each would wait
 * for one that none will free, until the pool's timeout failed them all (ten concurrent role
 * assignments answered 503). With half the pool free of transactions, those reads always get
 * a connection.
 */
export function transactionLimit(poolSize: number): number {
  return Math.max(1, Math.floor(poolSize / 2));
}

/**
 * At most `limit` runs at once, the others waiting in turn. One that cannot start within
 * `waitMs` fails as Prisma fails a transaction that cannot start in time (P2028): callers
 * answer SERVICE_UNAVAILABLE, as for an exhausted pool.
 */
function createSlots(limit: number) {
  let free = limit;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(waitMs: number, work: () => Promise<T>): Promise<T> {
      if (free > 0) free--;
      else
        await new Promise<void>((resolve, reject) => {
          const start = () => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            waiting.splice(waiting.indexOf(start), 1);
            reject(
              new Prisma.PrismaClientKnownRequestError(
                `Transaction API error: no transaction could start within ${waitMs} ms (${limit} open)`,
                { code: 'P2028', clientVersion: Prisma.prismaVersion.client },
              ),
            );
          }, waitMs);
          waiting.push(start);
        });
      try {
        return await work();
      } finally {
        // The slot passes to the next in line, or is free again.
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}
