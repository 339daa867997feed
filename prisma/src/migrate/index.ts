/**
 * `@platform/db/migrate`: Prisma migrations without the native schema-engine binary.
 *
 * Drives the WebAssembly build of Prisma's schema engine (`@prisma/schema-engine-wasm`)
 * through the `@prisma/adapter-pg` driver adapter, over Prisma's standard migrations layout.
 * Migrations applied here are recorded in `_prisma_migrations` exactly like
 * `prisma migrate deploy` does, so the two are interchangeable.
 *
 * A separate entry point from `@platform/db`, so that only the migrate CLI, the launcher and
 * the test harness load it: the services' bundles do not carry the engine.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseDatabaseUrl, quoteIdent, withDatabase, withPgClient } from './database-target';
import {
  readMigrationsList,
  readSchemaFiles,
  slugifyMigrationName,
  withDefaultLockfile,
  writeMigration,
} from './migrations-folder';
import { errorCode } from './schema-engine-error';
import { NO_FILTERS, callEngine, withEngine } from './wasm-engine';

export { SchemaEngineError } from './schema-engine-error';
export { schemaEngineVersion, setSchemaEngineLogger } from './wasm-engine';

export interface ApplyMigrationsOptions {
  /** postgresql://user:pass@host:port/db[?schema=name] */
  databaseUrl: string;
  /** Directory holding `<timestamp>_<name>/migration.sql` and `migration_lock.toml`. */
  migrationsDir: string;
  /** A `.prisma` file, or a directory of `.prisma` files (multi-file schema). */
  schemaPath: string;
}

export interface CreateMigrationOptions extends ApplyMigrationsOptions {
  /** Human-readable migration name; becomes `<timestamp>_<name>`. */
  name: string;
}

/**
 * This package's schema and migrations, resolved from this source file (a bundle of the
 * migrate CLI finds them from its own location instead).
 */
export const MIGRATIONS = {
  schemaPath: fileURLToPath(new URL('../../schema.prisma', import.meta.url)),
  migrationsDir: fileURLToPath(new URL('../../migrations', import.meta.url)),
} as const;

/**
 * Applies every migration of `migrationsDir` not yet recorded in the database
 * (`prisma migrate deploy`). Returns the names of the migrations it applied:
 * an empty array when the database was already up to date.
 */
export async function applyMigrations(opts: ApplyMigrationsOptions): Promise<string[]> {
  const target = parseDatabaseUrl(opts.databaseUrl);
  const schemaFiles = await readSchemaFiles(opts.schemaPath);
  const migrationsList = await readMigrationsList(opts.migrationsDir);

  // The engine keeps `_prisma_migrations` in the connection's schema
  // (`?schema=`, default `public`) and fails if that schema does not exist.
  // The schemas of a multi-schema datasource are created by the migrations
  // themselves (`CREATE SCHEMA IF NOT EXISTS ...`), as with `migrate deploy`.
  const { schema } = target;
  if (schema !== undefined) {
    await withPgClient(target.url, target, `Cannot create schema "${schema}"`, (client) =>
      client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`),
    );
  }

  return withEngine(target, schemaFiles, async (engine) => {
    const output = await callEngine('applyMigrations', target, () =>
      engine.applyMigrations({ migrationsList, filters: NO_FILTERS }),
    );
    return output.appliedMigrationNames;
  });
}

/**
 * Writes `migrationsDir/<timestamp>_<name>/migration.sql` with the SQL that
 * takes a database from the state of the existing migrations to the state
 * described by the schema (`prisma migrate dev --create-only`). Returns the new
 * migration's directory name, or `null` (writing nothing) when the migrations
 * already match the schema.
 *
 * The database at `databaseUrl` is not changed: the existing migrations are
 * replayed into a temporary database `<db>_shadow_<random>` on the same
 * server, which is dropped afterwards (the engine needs a real Postgres to
 * compute the state of a migration history). The role therefore needs the
 * CREATEDB privilege.
 */
export async function createMigration(opts: CreateMigrationOptions): Promise<string | null> {
  const target = parseDatabaseUrl(opts.databaseUrl);
  const slug = slugifyMigrationName(opts.name);
  const schemaFiles = await readSchemaFiles(opts.schemaPath);
  const migrationsList = await readMigrationsList(opts.migrationsDir);

  const script = await withEngine(target, schemaFiles, async (engine) => {
    const result = await callEngine('diff', target, () =>
      engine.diff({
        from: { tag: 'migrations', ...withDefaultLockfile(migrationsList) },
        to: { tag: 'schemaDatamodel', files: schemaFiles },
        script: true,
        exitCode: true, // 2 when there is a difference, 0 when there is none
        filters: NO_FILTERS,
      }),
    );
    return result.exitCode === 0 ? null : (result.stdout ?? '');
  });
  if (script === null) return null;
  return writeMigration(migrationsList, slug, script);
}

/**
 * The SQL that would take the database to the state the schema describes
 * (`prisma migrate diff --from-config-datasource --to-schema --script`), or `null` when
 * the database already matches the schema: a drift check after migrations were applied.
 */
export async function diffDatabase(opts: ApplyMigrationsOptions): Promise<string | null> {
  const target = parseDatabaseUrl(opts.databaseUrl);
  const schemaFiles = await readSchemaFiles(opts.schemaPath);
  return withEngine(target, schemaFiles, async (engine) => {
    const result = await callEngine('diff', target, () =>
      engine.diff({
        // The live database, reached through the engine's driver adapter.
        from: {
          tag: 'schemaDatasource',
          files: schemaFiles,
          configDir: path.dirname(path.resolve(opts.schemaPath)),
        },
        to: { tag: 'schemaDatamodel', files: schemaFiles },
        script: true,
        exitCode: true,
        filters: NO_FILTERS,
      }),
    );
    return result.exitCode === 0 ? null : (result.stdout ?? '');
  });
}

/**
 * Creates the database named in `databaseUrl` unless it exists, connecting to
 * the `postgres` maintenance database of the same server. Returns whether it
 * was created.
 */
export async function createDatabaseIfMissing(databaseUrl: string): Promise<boolean> {
  const target = parseDatabaseUrl(databaseUrl);
  const maintenanceUrl = withDatabase(target.url, 'postgres');
  const action = `Cannot create database "${target.database}" (via the "postgres" database)`;
  return withPgClient(maintenanceUrl, target, action, async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      target.database,
    ]);
    if (found.rowCount !== null && found.rowCount > 0) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(target.database)}`);
      return true;
    } catch (error: unknown) {
      if (errorCode(error) === '42P04') return false; // created concurrently
      throw error;
    }
  });
}
