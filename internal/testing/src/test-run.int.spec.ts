import { readdir } from 'node:fs/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '@platform/db/migrate';
import { createTestRun, migratedTemplateName, TEMPLATE_LOCK, type TestRun } from './test-run';

const ADMIN_URL =
  process.env['TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

const migrationNames = async () =>
  (await readdir(MIGRATIONS.migrationsDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();

const appliedMigrations = async (run: TestRun) =>
  (
    await query<{ name: string }>(
      run.databaseUrl,
      'SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL',
    )
  )
    .map((row) => row.name)
    .sort();

/** This checkout's template and any half-built one of it (none once a build completes). */
const templates = async () =>
  query<{ datname: string; datistemplate: boolean; datallowconn: boolean }>(
    ADMIN_URL,
    'SELECT datname, datistemplate, datallowconn FROM pg_database WHERE starts_with(datname, $1)',
    [await migratedTemplateName()],
  );

const databaseExists = async (run: TestRun) =>
  (
    await query(ADMIN_URL, 'SELECT 1 FROM pg_database WHERE datname = $1', [
      new URL(run.databaseUrl).pathname.slice(1),
    ])
  ).length === 1;

describe('createTestRun', () => {
  it('gives runs started at once each its own database with every migration applied', async () => {
    const expected = await migrationNames();
    for (let repeat = 0; repeat < 2; repeat++) {
      const runs = await Promise.all(Array.from({ length: 4 }, () => createTestRun()));
      try {
        expect(new Set(runs.map((run) => run.databaseUrl)).size).toBe(4);
        for (const run of runs) expect(await appliedMigrations(run)).toEqual(expected);
        // Each database is its own: a row written in one is in no other.
        const [first, second] = runs as [TestRun, TestRun];
        await query(first.databaseUrl, 'CREATE TABLE only_here (id int)');
        const tablesNamed = (run: TestRun) =>
          query(run.databaseUrl, `SELECT 1 FROM pg_tables WHERE tablename = 'only_here'`);
        expect(await tablesNamed(first)).toHaveLength(1);
        expect(await tablesNamed(second)).toHaveLength(0);
      } finally {
        await Promise.all(runs.map((run) => run.close()));
      }
      for (const run of runs) expect(await databaseExists(run)).toBe(false);
    }
    // One template stays, closed to connections, for the next run with these migrations.
    const [template, ...others] = await templates();
    expect(others).toEqual([]);
    expect(template).toMatchObject({ datistemplate: true, datallowconn: false });
  });

  it('builds the template again when it is gone, and leaves no half-built one', async () => {
    const [template] = await templates();
    expect(template).toBeDefined();
    // Dropped as a run of other migrations would drop it: under the builders' lock.
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK]);
      await admin.query(`ALTER DATABASE "${template!.datname}" IS_TEMPLATE false`);
      await admin.query(`DROP DATABASE "${template!.datname}" WITH (FORCE)`);
      await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
    } finally {
      await admin.end();
    }
    const runs = await Promise.all([createTestRun(), createTestRun()]);
    try {
      const expected = await migrationNames();
      for (const run of runs) expect(await appliedMigrations(run)).toEqual(expected);
      expect((await templates()).map((row) => row.datname)).toEqual([template!.datname]);
    } finally {
      await Promise.all(runs.map((run) => run.close()));
    }
  });
});
