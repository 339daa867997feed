import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { connect as connectAmqp } from 'amqplib';
import { Redis } from 'ioredis';
import pg from 'pg';
import { applyMigrations, MIGRATIONS } from '@platform/db/migrate';

const BASE = {
  databaseUrl: process.env['TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  rabbitmqUrl: process.env['TEST_RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672',
};

/** One isolated world for a test file: its own database, Redis key prefix and exchange. */
export interface TestRun {
  readonly id: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly redisKeyPrefix: string;
  readonly rabbitmqUrl: string;
  readonly exchange: string;
  readonly internalToken: string;
  /** The variables every app of this run gets. */
  readonly env: Record<string, string>;
  /** Drops the database, deletes the run's Redis keys and its exchange. */
  close(): Promise<void>;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: BASE.databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function urlOf(database: string): string {
  const url = new URL(BASE.databaseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** The prefix of the migrated templates' names; the rest is the migrations' digest. */
const TEMPLATE_PREFIX = 'test_template_';
// One session at a time builds a template (advisory locks are per database: every session here
// is on the admin database). The number is arbitrary, and only these functions take it.
export const TEMPLATE_LOCK = 7_362_910_441;

/** A digest of the schema and every migration: another set of migrations is another template. */
async function migrationsDigest(): Promise<string> {
  const hash = createHash('sha256').update(await readFile(MIGRATIONS.schemaPath));
  const entries = await readdir(MIGRATIONS.migrationsDir, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const file = entry.isDirectory()
      ? path.join(MIGRATIONS.migrationsDir, entry.name, 'migration.sql')
      : path.join(MIGRATIONS.migrationsDir, entry.name);
    hash.update(`\0${entry.name}\0`).update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The database every run's is copied from: the migrations applied once, not once per run (the
 * schema engine takes about a second of CPU and two of wall time per database, a copy a fifth of
 * that). Built by the first session that needs it, under an advisory lock, as `<name>_building`
 * and renamed when complete, so a build cut short is never copied; then closed to connections
 * (CREATE DATABASE copies only a database nobody is connected to) and marked a template. It
 * stays on the server for the next run with the same migrations. Templates of other migrations
 * are left alone: another checkout on the same server (a branch, a second CI) may be using one,
 * and dropping it would make each side rebuild its own again and again.
 */
async function buildTemplate(name: string): Promise<void> {
  await withAdmin(async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (found.rowCount) return;
      const building = `${name}_building`;
      await client.query(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${building}"`);
      await applyMigrations({ databaseUrl: urlOf(building), ...MIGRATIONS });
      // The engine's connections may still be closing, and a rename waits for none: they are
      // ended first, each waited for (up to 5 s).
      await client.query(
        'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1',
        [building],
      );
      await client.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
      await client.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
    }
  });
}

let templateName: Promise<string> | undefined;

/** The name of the template of this checkout's migrations. */
export function migratedTemplateName(): Promise<string> {
  templateName ??= migrationsDigest().then((digest) => `${TEMPLATE_PREFIX}${digest}`);
  return templateName;
}

/** A new database with every migration applied, copied from the template (built if missing). */
async function createMigratedDatabase(database: string): Promise<void> {
  const template = await migratedTemplateName();
  for (let attempt = 1; ; attempt++) {
    try {
      await withAdmin((client) =>
        client.query(`CREATE DATABASE "${database}" TEMPLATE "${template}"`),
      );
      return;
    } catch (error) {
      // 3D000: no template yet (or someone dropped it in between).
      if ((error as { code?: string }).code !== '3D000' || attempt === 3) throw error;
      await buildTemplate(template);
    }
  }
}

export async function createTestRun(): Promise<TestRun> {
  const id = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const database = `test_${id}`;
  await createMigratedDatabase(database);
  const databaseUrl = urlOf(database);

  const redisKeyPrefix = `test:${id}:`;
  const exchange = `test.${id}`;
  const internalToken = randomBytes(32).toString('base64url');
  const env = {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'info',
    DATABASE_URL: databaseUrl,
    REDIS_URL: BASE.redisUrl,
    REDIS_KEY_PREFIX: redisKeyPrefix,
    RABBITMQ_URL: BASE.rabbitmqUrl,
    EVENTS_EXCHANGE: exchange,
    EVENTS_QUEUE_EXPIRES_MS: '60000',
    INTERNAL_TOKEN: internalToken,
    SHUTDOWN_TIMEOUT_MS: '5000',
    // No fixed metrics ports in tests (runs side by side would collide): startApps gives each
    // instance a free one; an app started otherwise serves none.
    METRICS_PORT: '0',
  };

  return {
    id,
    databaseUrl,
    redisUrl: BASE.redisUrl,
    redisKeyPrefix,
    rabbitmqUrl: BASE.rabbitmqUrl,
    exchange,
    internalToken,
    env,
    async close() {
      await withAdmin((client) =>
        client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`),
      );
      const redis = new Redis(BASE.redisUrl);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(
            cursor,
            'MATCH',
            `${redisKeyPrefix}*`,
            'COUNT',
            500,
          );
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
      // Queues expire on their own (EVENTS_QUEUE_EXPIRES_MS); the exchange is removed here.
      const connection = await connectAmqp(BASE.rabbitmqUrl);
      try {
        const channel = await connection.createChannel();
        await channel.deleteExchange(exchange);
      } finally {
        await connection.close();
      }
    },
  };
}
