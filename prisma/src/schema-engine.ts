/**
 * Prisma migrations without the native schema-engine binary.
 *
 * Drives the WebAssembly build of Prisma's schema engine
 * (`@prisma/schema-engine-wasm`) through the `@prisma/adapter-pg` driver
 * adapter, and reads/writes Prisma's standard migrations layout:
 *
 *   migrations/
 *     migration_lock.toml
 *     20250101120000_init/migration.sql
 *
 * Migrations applied here are recorded in `_prisma_migrations` exactly like
 * `prisma migrate deploy` does, so the two are interchangeable.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type {
  MigrationDirectory,
  MigrationList,
  SchemaContainer,
  SchemaEngine,
  SchemaFilter,
} from '@prisma/schema-engine-wasm';
import * as engineGlue from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

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

export class SchemaEngineError extends Error {
  override name = 'SchemaEngineError';
}

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
  const lockfileMissing = migrationsList.lockfile.content === null;

  const script = await withEngine(target, schemaFiles, async (engine) => {
    const result = await callEngine('diff', target, () =>
      engine.diff({
        // The engine needs the provider from migration_lock.toml to replay the
        // history; a brand-new migrations directory has none yet.
        from: {
          tag: 'migrations',
          ...migrationsList,
          lockfile: {
            ...migrationsList.lockfile,
            content: migrationsList.lockfile.content ?? LOCKFILE_CONTENT,
          },
        },
        to: { tag: 'schemaDatamodel', files: schemaFiles },
        script: true,
        exitCode: true, // 2 when there is a difference, 0 when there is none
        filters: NO_FILTERS,
      }),
    );
    return result.exitCode === 0 ? null : (result.stdout ?? '');
  });
  if (script === null) return null;

  const existing = migrationsList.migrationDirectories.map((dir) => dir.path);
  const migrationName = nextMigrationName(slug, existing);
  const migrationDir = path.join(migrationsList.baseDir, migrationName);
  await mkdir(migrationDir, { recursive: true });
  await writeFile(path.join(migrationDir, 'migration.sql'), script, { flag: 'wx' });
  if (lockfileMissing) {
    await writeFile(path.join(migrationsList.baseDir, LOCKFILE_NAME), LOCKFILE_CONTENT);
  }
  return migrationName;
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

// ---------------------------------------------------------------------------
// Migrations directory and schema files
// ---------------------------------------------------------------------------

const LOCKFILE_NAME = 'migration_lock.toml';
/** Same content `prisma migrate dev` writes. */
const LOCKFILE_CONTENT = [
  '# Please do not edit this file manually',
  '# It should be added in your version-control system (e.g., Git)',
  'provider = "postgresql"',
  '',
].join('\n');
const NO_FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] };

/** Loads the migrations directory the way the Prisma CLI does (missing directory = no migrations). */
async function readMigrationsList(migrationsDir: string): Promise<MigrationList> {
  const baseDir = path.resolve(migrationsDir);
  const lockfileContent = await readFile(path.join(baseDir, LOCKFILE_NAME), 'utf8').catch(
    (error: unknown) => {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    },
  );

  const entries = await readdir(baseDir, { withFileTypes: true }).catch((error: unknown) => {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  });

  const migrationDirectories: MigrationDirectory[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const file = path.join(baseDir, entry.name, 'migration.sql');
    const content = await readFile(file, 'utf8').then(
      (value) => ({ tag: 'ok' as const, value }),
      (error: unknown) => ({ tag: 'error' as const, value: errorMessage(error) }),
    );
    migrationDirectories.push({
      path: entry.name,
      migrationFile: { path: 'migration.sql', content },
    });
  }
  migrationDirectories.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  return {
    baseDir,
    lockfile: { path: LOCKFILE_NAME, content: lockfileContent },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/** Reads one `.prisma` file, or every `.prisma` file below a directory. */
async function readSchemaFiles(schemaPath: string): Promise<SchemaContainer[]> {
  const resolved = path.resolve(schemaPath);
  const info = await stat(resolved).catch((error: unknown) => {
    throw new SchemaEngineError(`Cannot read Prisma schema at ${resolved}: ${errorMessage(error)}`);
  });

  const files = info.isDirectory()
    ? (await readdir(resolved, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile() && entry.name.endsWith('.prisma'))
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort()
    : [resolved];
  if (files.length === 0) {
    throw new SchemaEngineError(`No .prisma files found in ${resolved}`);
  }
  return Promise.all(
    files.map(async (file) => ({ path: file, content: await readFile(file, 'utf8') })),
  );
}

function slugifyMigrationName(name: string): string {
  const slug = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 200);
  if (slug === '') {
    throw new SchemaEngineError(
      `Invalid migration name ${JSON.stringify(name)}: use letters, digits or "_".`,
    );
  }
  return slug;
}

/** `<UTC yyyymmddhhmmss>_<slug>`, kept strictly after the newest existing migration. */
function nextMigrationName(slug: string, existing: readonly string[]): string {
  let timestamp = formatTimestamp(new Date());
  const newest = [...existing].sort().at(-1)?.slice(0, 14);
  if (newest !== undefined && /^\d{14}$/.test(newest) && timestamp <= newest) {
    timestamp = (BigInt(newest) + 1n).toString(); // same second as the previous one
  }
  return `${timestamp}_${slug}`;
}

function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/\D/g, '').slice(0, 14);
}

// ---------------------------------------------------------------------------
// Wasm engine
// ---------------------------------------------------------------------------

interface PanicRegistry {
  set_message(message: string): void;
}

/**
 * The bits of Node's global `WebAssembly` used here, typed locally so this file
 * compiles whether or not the project's `lib` includes the DOM typings.
 */
interface WasmRuntime {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(
    module: WasmModule,
    imports: Record<string, object>,
  ): Promise<{ exports: Record<string, unknown> }>;
  Module: { imports(module: WasmModule): { module: string; name: string; kind: string }[] };
}
interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}

declare global {
  // The engine reports Rust panics through this global (see the engine's panic hook).
  var PRISMA_WASM_PANIC_REGISTRY: PanicRegistry | undefined;
}

let lastPanicMessage: string | undefined;
let wasmReady: Promise<void> | undefined;

/**
 * Instantiates `schema_engine_bg.wasm` and hands it to the package's wasm-bindgen
 * glue. This replaces the package entry point (`schema_engine.js`), which
 * imports the `.wasm` file as an ES module and so needs
 * `--experimental-wasm-modules`. The glue keeps module-level state, so the
 * instance is created once per process.
 */
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    globalThis.PRISMA_WASM_PANIC_REGISTRY ??= {
      set_message(message: string) {
        lastPanicMessage = message;
      },
    };
    const require = createRequire(import.meta.url);
    const gluePath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bytes = await readFile(path.join(path.dirname(gluePath), 'schema_engine_bg.wasm'));
    const wasm = (globalThis as unknown as { WebAssembly: WasmRuntime }).WebAssembly;
    const module = await wasm.compile(bytes);

    // wasm-bindgen imports everything from "./schema_engine_bg.js" (the glue).
    const glue = { ...engineGlue, ...trackedTimerImports() };
    const imports: Record<string, object> = {};
    for (const { module: name } of wasm.Module.imports(module)) imports[name] = glue;
    const instance = await wasm.instantiate(module, imports);
    engineGlue.__wbg_set_wasm(instance.exports);
    const start = instance.exports['__wbindgen_start'];
    if (typeof start === 'function') (start as () => void)();
  })();
  wasmReady.catch(() => {
    wasmReady = undefined;
  });
  return wasmReady;
}

/**
 * The engine arms timeouts (e.g. around taking the migration advisory lock)
 * that it never clears, which would keep the process alive for ~10 s after the
 * work is done. Its `setTimeout` import is replaced by one that records the
 * timers, and `withEngine` clears the leftovers once no engine call is running.
 */
const engineTimers = new Set<ReturnType<typeof setTimeout>>();
let runningEngines = 0;

function trackedTimerImports(): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const name of Object.keys(engineGlue)) {
    if (!name.startsWith('__wbg_setTimeout_')) continue;
    overrides[name] = (callback: () => void, delay: number) => {
      const timer = setTimeout(() => {
        engineTimers.delete(timer);
        callback();
      }, delay >>> 0);
      engineTimers.add(timer);
      return timer;
    };
  }
  return overrides;
}

function clearLeftoverEngineTimers(): void {
  if (runningEngines > 0) return;
  for (const timer of engineTimers) clearTimeout(timer);
  engineTimers.clear();
}

/** Schema-engine version (git hash) of the installed wasm build. */
export async function schemaEngineVersion(): Promise<string> {
  await loadWasm();
  return engineGlue.version();
}

/**
 * Runs `fn` with a wasm SchemaEngine connected to the database of `target`,
 * then frees the engine, closes every pool it opened and drops any shadow
 * database left behind.
 */
async function withEngine<T>(
  target: DatabaseTarget,
  schemaFiles: SchemaContainer[],
  fn: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  await loadWasm();
  const factory = new EngineAdapterFactory(target);
  let engine: SchemaEngine | undefined;
  runningEngines += 1;
  try {
    engine = await callEngine('start', target, () =>
      engineGlue.SchemaEngine.new(
        { datamodels: schemaFiles.map((file): [string, string] => [file.path, file.content]) },
        logFromEngine,
        bindMigrationAwareSqlAdapterFactory(factory),
      ),
    );
    return await fn(engine);
  } finally {
    runningEngines -= 1;
    engine?.free();
    await factory.close();
    clearLeftoverEngineTimers();
  }
}

/**
 * Driver adapter factory for the engine, built on `@prisma/adapter-pg` with
 * three corrections that matter for migrations:
 *
 * - Shadow databases: `PrismaPg#connectToShadowDb()` spreads `{ database }`
 *   over a `connectionString` config, which `pg` then overrides with the URL's
 *   database, so its "shadow" connection would point at the real database.
 *   Here the shadow database gets its own URL, and is always dropped.
 * - Scripts: `PrismaPg#executeScript()` splits scripts on every `;`, which
 *   breaks `$$` function bodies and string literals. Scripts are sent whole
 *   instead (one simple-protocol query, like the native engine does).
 * - Catalog columns of type `"char"` (e.g. `pg_constraint.contype`), which the
 *   engine's introspection reads but the adapter cannot map, are read as text.
 */
class EngineAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres';
  readonly adapterName = '@prisma/adapter-pg';
  private readonly adapters = new Set<SqlDriverAdapter>();
  private readonly shadowDatabases = new Set<string>();

  constructor(private readonly target: DatabaseTarget) {}

  connect(): Promise<SqlDriverAdapter> {
    return this.open(this.target.url);
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = shadowDatabaseName(this.target.database);
    await withPgClient(
      this.target.url,
      this.target,
      `Cannot create shadow database "${name}"`,
      (client) => client.query(`CREATE DATABASE ${quoteIdent(name)}`),
    );
    this.shadowDatabases.add(name);
    const shadowUrl = withDatabase(this.target.url, name);
    const { schema } = this.target;
    if (schema !== undefined) {
      await withPgClient(
        shadowUrl,
        this.target,
        `Cannot prepare shadow database "${name}"`,
        (client) => client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`),
      );
    }
    return this.open(shadowUrl, () => this.dropShadowDatabase(name));
  }

  /** Closes every connection and drops shadow databases the engine did not dispose of. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.adapters].map((adapter) => adapter.dispose()));
    await Promise.allSettled(
      [...this.shadowDatabases].map((name) => this.dropShadowDatabase(name)),
    );
  }

  private async open(url: string, afterDispose?: () => Promise<void>): Promise<SqlDriverAdapter> {
    const { schema } = this.target;
    const pool = new pg.Pool({
      connectionString: url,
      // Like the native engine, `?schema=` sets the search_path, so that
      // unqualified migration SQL lands in that schema.
      ...(schema === undefined
        ? {}
        : { options: `-c search_path=${escapeStartupOption(quoteIdent(schema))}` }),
    });
    pool.on('connect', readCharColumnsAsText);
    const inner = await new PrismaPg(pool, {
      disposeExternalPool: true,
      ...(schema === undefined ? {} : { schema }),
    }).connect();

    const adapter: SqlDriverAdapter = {
      provider: inner.provider,
      adapterName: inner.adapterName,
      queryRaw: (query) => inner.queryRaw(query),
      executeRaw: (query) => inner.executeRaw(query),
      // No parameters => pg uses the simple query protocol, which runs a
      // multi-statement script as one implicit transaction.
      executeScript: async (script) => {
        await inner.executeRaw({ sql: script, args: [], argTypes: [] });
      },
      startTransaction: (isolationLevel) => inner.startTransaction(isolationLevel),
      getConnectionInfo: () => inner.getConnectionInfo(),
      dispose: async () => {
        if (!this.adapters.delete(adapter)) return;
        try {
          await inner.dispose();
        } finally {
          await afterDispose?.();
        }
      },
    };
    this.adapters.add(adapter);
    return adapter;
  }

  private async dropShadowDatabase(name: string): Promise<void> {
    if (!this.shadowDatabases.delete(name)) return;
    await withPgClient(
      this.target.url,
      this.target,
      `Cannot drop shadow database "${name}"`,
      (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`),
    );
  }
}

const CHAR_OID = 18; // Postgres' internal one-byte "char" type
const TEXT_OID = 25;

/**
 * Makes `client` report `"char"` result columns as `text` (their values are
 * already strings), for every query style pg uses: promise and callback.
 */
function readCharColumnsAsText(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const patched = (...args: unknown[]): unknown => {
    const last = args.at(-1);
    if (typeof last === 'function') {
      const callback = last as (error: unknown, result: unknown) => unknown;
      args[args.length - 1] = (error: unknown, result: unknown): unknown => {
        if (!error) relabelCharFields(result);
        return callback(error, result);
      };
      return query(...args);
    }
    const pending = query(...args);
    return pending instanceof Promise
      ? pending.then((result: unknown) => {
          relabelCharFields(result);
          return result;
        })
      : pending;
  };
  Object.defineProperty(client, 'query', { value: patched, configurable: true, writable: true });
}

function relabelCharFields(result: unknown): void {
  // A multi-statement query resolves to an array of results.
  const results: unknown[] = Array.isArray(result) ? (result as unknown[]) : [result];
  for (const single of results) {
    if (typeof single !== 'object' || single === null || !('fields' in single)) continue;
    const { fields } = single;
    if (!Array.isArray(fields)) continue;
    for (const field of fields as unknown[]) {
      if (
        typeof field === 'object' &&
        field !== null &&
        'dataTypeID' in field &&
        field.dataTypeID === CHAR_OID
      ) {
        field.dataTypeID = TEXT_OID;
      }
    }
  }
}

function shadowDatabaseName(database: string): string {
  const suffix = `_shadow_${randomBytes(4).toString('hex')}`;
  return database.slice(0, 63 - suffix.length) + suffix; // Postgres identifiers: 63 bytes
}

let engineLogger: ((line: string) => void) | undefined;

/**
 * Receives the engine's log lines (JSON tracing events, one per call), e.g.
 * `setSchemaEngineLogger((line) => process.stderr.write(line + '\n'))`.
 * Pass `undefined` to silence them again (the default).
 */
export function setSchemaEngineLogger(logger: ((line: string) => void) | undefined): void {
  engineLogger = logger;
}

function logFromEngine(line: unknown): void {
  engineLogger?.(String(line).trim());
}

/** Runs one engine call and turns its failure into a readable, credential-free error. */
async function callEngine<T>(
  operation: string,
  target: DatabaseTarget,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error: unknown) {
    let message = errorMessage(error);
    if (lastPanicMessage !== undefined) {
      message = `${message} (engine panic: ${lastPanicMessage})`;
      lastPanicMessage = undefined;
    }
    // Drop the Rust span trace ("   0: schema_engine_wasm::...") that follows the message.
    message = message.split(/\n\s+0: /)[0]?.trim() ?? message;
    throw new SchemaEngineError(`Schema engine ${operation} failed: ${redact(message, target)}`, {
      cause: error,
    });
  }
}

// ---------------------------------------------------------------------------
// Database URL and pg helpers
// ---------------------------------------------------------------------------

interface DatabaseTarget {
  /** Connection URL without the Prisma-only `schema` parameter. */
  url: string;
  database: string;
  /** Postgres schema from `?schema=`, if given. */
  schema: string | undefined;
  /** Strings to mask in error messages: the URLs and the `:password@` part. */
  secrets: string[];
}

function parseDatabaseUrl(databaseUrl: string): DatabaseTarget {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new SchemaEngineError(
      'DATABASE_URL is not a valid URL (expected postgresql://user:password@host:port/db).',
    );
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new SchemaEngineError(`DATABASE_URL must use postgresql:// (got ${url.protocol}//).`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '') {
    throw new SchemaEngineError(
      'DATABASE_URL must name a database (postgresql://host:port/<database>).',
    );
  }
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  const secrets = [databaseUrl, url.toString()];
  if (url.password !== '')
    secrets.push(`:${url.password}@`, `:${decodeURIComponent(url.password)}@`);
  return { url: url.toString(), database, schema: schema === '' ? undefined : schema, secrets };
}

function withDatabase(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Runs `fn` on a single short-lived connection; failures read "<action>: <reason>". */
async function withPgClient<T>(
  url: string,
  target: DatabaseTarget,
  action: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return await fn(client);
  } catch (error: unknown) {
    throw new SchemaEngineError(`${action}: ${redact(errorMessage(error), target)}`, {
      cause: error,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Escapes a value for libpq's `options` startup parameter (space-separated, backslash escapes). */
function escapeStartupOption(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/ /g, '\\ ');
}

/** Quotes a Postgres identifier ("my""db"). */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

function redact(message: string, target: DatabaseTarget): string {
  let result = message;
  for (const secret of target.secrets) {
    if (secret.length > 0) result = result.split(secret).join('***');
  }
  return result;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
