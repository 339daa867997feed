import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, prepared, transactionLimit, type Database } from './index';

// An empty database of its own on the machine's PostgreSQL (this package sits below the
// shared test harness, so it makes its own).
const serverUrl =
  process.env['TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseName = `prepared_${randomBytes(6).toString('hex')}`;

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(() => onServer(`CREATE DATABASE ${databaseName}`));
afterAll(() => onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));

describe('prepared statements on the Prisma pool', () => {
  let db: Database;

  beforeAll(async () => {
    const url = new URL(serverUrl);
    url.pathname = `/${databaseName}`;
    db = await connectDatabase({ databaseUrl: url.toString(), poolSize: 2 });
  });

  afterAll(() => db.$disconnect());

  it('runs a statement many times, on every pooled connection, with its own values', async () => {
    const echo = prepared('test-echo', 'SELECT $1::int * 2 AS doubled, now() AS at');
    const rows = await Promise.all(
      Array.from({ length: 20 }, (_, n) => db.$run<{ doubled: number; at: Date }>(echo, [n])),
    );
    expect(rows.map(([row]) => row?.doubled)).toEqual(Array.from({ length: 20 }, (_, n) => n * 2));
    expect(rows[0]?.[0]?.at).toBeInstanceOf(Date);
  });

  it('sees what Prisma wrote and reports SQL errors', async () => {
    await db.$executeRawUnsafe('CREATE TABLE prepared_probe (id int PRIMARY KEY)');
    const insert = prepared(
      'test-insert',
      'INSERT INTO prepared_probe (id) VALUES ($1) RETURNING id',
    );
    await db.$run(insert, [1]);
    await expect(db.$run(insert, [1])).rejects.toThrow(/duplicate key/);
    expect(await db.$queryRawUnsafe('SELECT id FROM prepared_probe')).toEqual([{ id: 1 }]);
  });

  it('refuses one name for two texts', () => {
    prepared('test-one-name', 'SELECT 1');
    expect(() => prepared('test-one-name', 'SELECT 2')).toThrow(/already declared/);
  });
});

describe('interactive transactions on the Prisma pool', () => {
  const poolSize = 4;
  let db: Database;

  beforeAll(async () => {
    const url = new URL(serverUrl);
    url.pathname = `/${databaseName}`;
    db = await connectDatabase({
      databaseUrl: url.toString(),
      poolSize,
      connectionTimeoutMs: 1_000,
    });
  });

  afterAll(() => db.$disconnect());

  it('all commit when more start at once than the pool has connections, each reading through the client meanwhile', async () => {
    // Each holds its connection while it reads through the client, which needs another one.
    const answers = await Promise.all(
      Array.from({ length: 3 * poolSize }, (_, n) =>
        db.$transaction(async (tx) => {
          await tx.$queryRawUnsafe('SELECT 1');
          const [row] = await db.$queryRawUnsafe<{ n: number }[]>(
            'SELECT $1::int AS n FROM pg_sleep(0.02)',
            n,
          );
          return row?.n;
        }),
      ),
    );
    expect(answers).toEqual(Array.from({ length: 3 * poolSize }, (_, n) => n));
  });

  it('fails a transaction that cannot start within its maxWait as Prisma does (P2028), then serves again', async () => {
    // Every slot taken by a transaction kept open until `release` (this package sits below
    // @platform/testing's latch).
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // Each takes its slot as it is called.
    const held = Array.from({ length: transactionLimit(poolSize) }, () =>
      db.$transaction(() => released, { timeout: 10_000 }),
    );
    const started = Date.now();
    await expect(db.$transaction(async () => 'late', { maxWait: 200 })).rejects.toMatchObject({
      code: 'P2028',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    release();
    await Promise.all(held);
    expect(await db.$transaction(async () => 'on time')).toBe('on time');
  });
});
