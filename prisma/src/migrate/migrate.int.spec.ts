import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  createMigration,
  diffDatabase,
  SchemaEngineError,
  type ApplyMigrationsOptions,
} from './index';

// A database of its own on the machine's PostgreSQL, and a schema and migrations folder of
// its own in a temporary directory (this package sits below the shared test harness).
const serverUrl =
  process.env['TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const databaseName = `migrate_${randomBytes(6).toString('hex')}`;

const DATASOURCE = 'datasource db {\n  provider = "postgresql"\n}\n';
const NOTE = `
model Note {
  id        Int      @id @default(autoincrement())
  body      String
  updatedAt DateTime @default(now()) @map("updated_at")
}
`;
const NOTE_WITH_TITLE = NOTE.replace('  body ', '  title     String?\n  body ');

const TOUCH_TRIGGER = `-- A function body holds semicolons: it must reach PostgreSQL whole.
CREATE FUNCTION note_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := 'epoch';
  RETURN NEW;
END;
$$;

CREATE TRIGGER note_touch BEFORE UPDATE ON "Note" FOR EACH ROW EXECUTE FUNCTION note_touch();
`;

async function onServer<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function databasesStartingWith(prefix: string): Promise<string[]> {
  return onServer(serverUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1)',
      [prefix],
    );
    return rows.map((row) => row.datname);
  });
}

describe('migrations on a fresh database', () => {
  let folder: string;
  let options: ApplyMigrationsOptions;
  const query = <T extends pg.QueryResultRow>(sql: string) =>
    onServer(options.databaseUrl, async (client) => (await client.query<T>(sql)).rows);
  const writeSchema = (models: string) =>
    writeFile(options.schemaPath, `${DATASOURCE}${models}`, 'utf8');
  const migrationNames = async () => (await readdir(options.migrationsDir)).sort();

  beforeAll(async () => {
    await onServer(serverUrl, (client) => client.query(`CREATE DATABASE ${databaseName}`));
    const url = new URL(serverUrl);
    url.pathname = `/${databaseName}`;
    folder = await mkdtemp(path.join(tmpdir(), 'migrate-'));
    options = {
      databaseUrl: url.toString(),
      schemaPath: path.join(folder, 'schema.prisma'),
      migrationsDir: path.join(folder, 'migrations'),
    };
  });

  afterAll(async () => {
    await onServer(serverUrl, async (client) => {
      for (const name of await databasesStartingWith(databaseName))
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    });
    await rm(folder, { recursive: true, force: true });
  });

  it('creates the first migration, and the lock file, from the schema alone', async () => {
    await writeSchema(NOTE);

    const created = await createMigration({ ...options, name: 'Add notes' });

    expect(created).toMatch(/^\d{14}_add_notes$/);
    expect(await migrationNames()).toEqual([created, 'migration_lock.toml']);
    const sql = await readFile(path.join(options.migrationsDir, created!, 'migration.sql'), 'utf8');
    expect(sql).toContain('CREATE TABLE "Note"');
  });

  it('applies it, after which the database matches the schema', async () => {
    expect(await diffDatabase(options)).toContain('CREATE TABLE "Note"');

    const applied = await applyMigrations(options);

    expect(applied).toEqual([(await migrationNames())[0]]);
    expect(await diffDatabase(options)).toBeNull();
  });

  it('creates a migration from a schema change, which brings the database to the schema', async () => {
    await writeSchema(NOTE_WITH_TITLE);

    const created = await createMigration({ ...options, name: 'note title' });

    expect(created).toMatch(/_note_title$/);
    expect(await diffDatabase(options)).toMatch(/ALTER TABLE "Note" ADD COLUMN +"title" TEXT/);
    expect(await applyMigrations(options)).toEqual([created]);
    expect(await diffDatabase(options)).toBeNull();
    expect(await query('SELECT title FROM "Note"')).toEqual([]);
  });

  it('creates no migration when the migrations already match the schema', async () => {
    const before = await migrationNames();

    expect(await createMigration({ ...options, name: 'nothing' })).toBeNull();
    expect(await migrationNames()).toEqual(before);
  });

  it('drops the shadow database it replays the history into', async () => {
    expect(await databasesStartingWith(`${databaseName}_shadow_`)).toEqual([]);
  });

  it('applies a migration whose function body, quoted with $$, holds semicolons', async () => {
    const name = '29990101000000_touch_trigger';
    await mkdir(path.join(options.migrationsDir, name));
    await writeFile(path.join(options.migrationsDir, name, 'migration.sql'), TOUCH_TRIGGER);

    expect(await applyMigrations(options)).toEqual([name]);

    await query(`INSERT INTO "Note" (body) VALUES ('first')`);
    await query(`UPDATE "Note" SET body = 'second'`);
    expect(await query(`SELECT body, updated_at = 'epoch' AS touched FROM "Note"`)).toEqual([
      { body: 'second', touched: true },
    ]);
  });

  it('applies nothing the second time: every migration is recorded once', async () => {
    expect(await applyMigrations(options)).toEqual([]);
    const recorded = await query<{ migration_name: string; finished: boolean }>(
      'SELECT migration_name, finished_at IS NOT NULL AS finished FROM _prisma_migrations ORDER BY migration_name',
    );
    const names = (await migrationNames()).filter((name) => name !== 'migration_lock.toml');
    expect(recorded).toEqual(names.map((name) => ({ migration_name: name, finished: true })));
  });

  it('drops the shadow database also when replaying the history fails', async () => {
    const broken = path.join(folder, 'broken-migrations');
    await cp(options.migrationsDir, broken, { recursive: true });
    await mkdir(path.join(broken, '29990101000001_broken'));
    await writeFile(
      path.join(broken, '29990101000001_broken', 'migration.sql'),
      'ALTER TABLE "Missing" ADD COLUMN x int;',
    );

    const creating = createMigration({ ...options, migrationsDir: broken, name: 'after broken' });

    await expect(creating).rejects.toThrow(SchemaEngineError);
    await expect(creating).rejects.toThrow(/29990101000001_broken/);
    expect(await databasesStartingWith(`${databaseName}_shadow_`)).toEqual([]);
  });
});
