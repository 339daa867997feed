// The database a migration runs against, as parsed from its URL, and the short-lived `pg`
// connections the runner opens itself (to create databases and schemas).
import pg from 'pg';

import { SchemaEngineError, errorMessage } from './schema-engine-error';

export interface DatabaseTarget {
  /** Connection URL without the Prisma-only `schema` parameter. */
  url: string;
  database: string;
  /** Postgres schema from `?schema=`, if given. */
  schema: string | undefined;
  /** Strings to mask in error messages: the URLs and the `:password@` part. */
  secrets: string[];
}

export function parseDatabaseUrl(databaseUrl: string): DatabaseTarget {
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

export function withDatabase(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Runs `fn` on a single short-lived connection; failures read "<action>: <reason>". */
export async function withPgClient<T>(
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
export function escapeStartupOption(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/ /g, '\\ ');
}

/** Quotes a Postgres identifier ("my""db"). */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

export function redact(message: string, target: DatabaseTarget): string {
  let result = message;
  for (const secret of target.secrets) {
    if (secret.length > 0) result = result.split(secret).join('***');
  }
  return result;
}
