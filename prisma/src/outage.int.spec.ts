import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, prepared, type Database } from './index';

// An empty database of its own on the machine's PostgreSQL, reached through a proxy this
// test cuts (this package sits below the shared test harness, so it makes its own).
const serverUrl =
  process.env['TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseName = `outage_${randomBytes(6).toString('hex')}`;

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A TCP proxy to PostgreSQL that can be cut (connections dropped, new ones closed at once),
 * silenced (bytes held, nothing closed: a black-holed network) or closed (refused).
 */
async function databaseProxy() {
  const server = new URL(serverUrl);
  const sockets = new Set<Socket>();
  let open = true;
  let silent = false;
  const listener = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = connect(Number(server.port || 5432), server.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => void to.write(chunk));
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on('error', () => to.destroy());
      if (silent) from.pause();
    }
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as AddressInfo).port;
  const url = new URL(serverUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  url.pathname = `/${databaseName}`;
  return {
    url: url.toString(),
    cut() {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    restore: () => void (open = true),
    silence(on: boolean) {
      silent = on;
      for (const socket of sockets) {
        if (on) socket.pause();
        else socket.resume();
      }
    },
    close() {
      open = false;
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/** How long `attempt` took to settle, and its error if it failed. */
async function timed(attempt: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  try {
    await attempt();
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, error: error ?? new Error('rejected') };
  }
}

async function eventually<T>(check: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The marks an error carries, down its `cause` chain and in Prisma's `meta`: what
 * `isDependencyOutage` (@platform/errors, which this contract package may not import) reads.
 */
function marks(error: unknown): string {
  const found: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Object; depth++) {
    const { code, kind, message, meta, cause } = current as Record<string, unknown>;
    found.push(`code=${String(code)} kind=${String(kind)} message=${String(message)}`);
    const adapterError = (meta as { driverAdapterError?: unknown } | undefined)?.driverAdapterError;
    current = cause ?? adapterError;
  }
  return found.join(' | ');
}

/**
 * Every shape PostgreSQL's outages take through Prisma 7 and the pg adapter, as seen here;
 * each is one `isDependencyOutage` recognises (packages/errors/src/translate.spec.ts).
 */
const OUTAGE_MARKS =
  /message=Connection terminated unexpectedly|message=Client has encountered a connection error and is not queryable|message=Query read timeout|message=timeout exceeded when trying to connect|kind=DatabaseNotReachable|code=ECONNREFUSED|code=P1001/;

function expectOutage(failure: { ms: number; error: unknown }, withinMs: number): void {
  expect(failure.error, 'expected the query to fail').toBeDefined();
  expect(marks(failure.error)).toMatch(OUTAGE_MARKS);
  expect(failure.ms).toBeLessThan(withinMs);
}

describe('the database pool through a PostgreSQL outage', () => {
  const ids = prepared('outage-ids', 'SELECT id FROM outage_probe ORDER BY id');
  let proxy: Awaited<ReturnType<typeof databaseProxy>>;
  let db: Database;

  beforeAll(async () => {
    await onServer(`CREATE DATABASE ${databaseName}`);
    proxy = await databaseProxy();
    db = await connectDatabase({ databaseUrl: proxy.url, poolSize: 3 });
    await db.$executeRawUnsafe('CREATE TABLE outage_probe (id int PRIMARY KEY)');
  });

  afterAll(async () => {
    await db.$disconnect();
    await proxy.close();
    await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  });

  it('fails queries and transactions at once while cut, and serves again once back', async () => {
    // Every pooled connection busy when the cut lands: a query, a transaction, a prepared statement.
    const inFlight = [
      timed(() => db.$queryRawUnsafe('SELECT pg_sleep(1)::text')),
      timed(() =>
        db.$transaction(async (tx) => {
          await tx.$executeRawUnsafe('INSERT INTO outage_probe (id) VALUES (1)');
          await sleep(500);
          await tx.$executeRawUnsafe('INSERT INTO outage_probe (id) VALUES (2)');
        }),
      ),
      timed(() => db.$run({ name: 'outage-sleep', text: 'SELECT pg_sleep(1)::text' }, [])),
    ];
    await sleep(200);
    proxy.cut();
    for (const failure of await Promise.all(inFlight)) expectOutage(failure, 2_000);

    // While it lasts, anything new fails at once too.
    expectOutage(await timed(() => db.$queryRawUnsafe('SELECT 1')), 1_000);
    expectOutage(
      await timed(() =>
        db.$transaction((tx) => tx.$executeRawUnsafe('INSERT INTO outage_probe (id) VALUES (3)')),
      ),
      1_000,
    );
    expectOutage(await timed(() => db.$run(ids, [])), 1_000);

    proxy.restore();
    const started = Date.now();
    await eventually(() => db.$queryRawUnsafe('SELECT 1'));
    expect(Date.now() - started).toBeLessThan(3_000);
    await db.$transaction((tx) => tx.$executeRawUnsafe('INSERT INTO outage_probe (id) VALUES (4)'));
    // The transaction cut halfway left nothing; nothing refused during the cut ran later.
    expect(await db.$run<{ id: number }>(ids, [])).toEqual([{ id: 4 }]);
    // Every pooled connection works again (no broken one was kept).
    await Promise.all(Array.from({ length: 6 }, () => db.$run(ids, [])));
  });

  it('fails queries in bounded time on a connection that goes silent, then recovers', async () => {
    const silent = await connectDatabase({
      databaseUrl: proxy.url,
      poolSize: 1,
      connectionTimeoutMs: 500,
      queryTimeoutMs: 500,
    });
    try {
      await silent.$queryRawUnsafe('SELECT 1');
      proxy.silence(true);
      expectOutage(await timed(() => silent.$queryRawUnsafe('SELECT 1')), 1_500);
      expectOutage(await timed(() => silent.$run(ids, [])), 1_500);
      proxy.silence(false);
      await eventually(() => silent.$queryRawUnsafe('SELECT 1'));
    } finally {
      proxy.silence(false);
      await silent.$disconnect();
    }
  });

  it('answers a refused connection as an outage, and says where at start', async () => {
    const refused = await databaseProxy();
    const early = await connectDatabase({ databaseUrl: refused.url, poolSize: 1 });
    await refused.close();
    try {
      expectOutage(await timed(() => early.$queryRawUnsafe('SELECT 1')), 1_000);
      expectOutage(await timed(() => early.$queryRawUnsafe('SELECT 1')), 1_000);
      expectOutage(await timed(() => early.$run(ids, [])), 1_000);
    } finally {
      await early.$disconnect();
    }
    await expect(connectDatabase({ databaseUrl: refused.url })).rejects.toThrow(
      /^PostgreSQL is unreachable at 127\.0\.0\.1:\d+$/,
    );
  });
});
