import { randomBytes } from 'node:crypto';
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

export async function createTestRun(): Promise<TestRun> {
  const id = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const database = `test_${id}`;
  await withAdmin((client) => client.query(`CREATE DATABASE "${database}"`));
  const url = new URL(BASE.databaseUrl);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  await applyMigrations({ databaseUrl, ...MIGRATIONS });

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
