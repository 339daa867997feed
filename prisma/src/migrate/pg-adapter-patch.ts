// `@prisma/adapter-pg` as the schema engine needs it: the adapter is written for Prisma
// Client, and three of its behaviours break migrations (see EngineAdapterFactory).
import { randomBytes } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';
import type {
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import pg from 'pg';

import {
  escapeStartupOption,
  quoteIdent,
  withDatabase,
  withPgClient,
  type DatabaseTarget,
} from './database-target';

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
export class EngineAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
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

/** `<db>_shadow_<8 hex>`, cut to Postgres' 63-byte identifiers. */
export function shadowDatabaseName(database: string): string {
  const suffix = `_shadow_${randomBytes(4).toString('hex')}`;
  return database.slice(0, 63 - suffix.length) + suffix;
}
