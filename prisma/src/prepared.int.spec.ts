import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, prepared, type Database } from './index';

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

describe('prepared statements on the Prisma pool', () => {
  let db: Database;

  beforeAll(async () => {
    await onServer(`CREATE DATABASE ${databaseName}`);
    const url = new URL(serverUrl);
    url.pathname = `/${databaseName}`;
    db = await connectDatabase({ databaseUrl: url.toString(), poolSize: 2 });
  });

  afterAll(async () => {
    await db.$disconnect();
    await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  });

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
