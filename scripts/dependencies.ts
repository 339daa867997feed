// Checks that PostgreSQL, Redis and RabbitMQ answer, and says how to start whichever does not.
import { connect as connectAmqp } from 'amqplib';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface DependencyUrls {
  databaseUrl: string;
  redisUrl: string;
  rabbitmqUrl: string;
}

interface Problem {
  name: string;
  address: string;
  reason: string;
  howToStart: string;
}

const HOW_TO_START = {
  PostgreSQL:
    'start it (e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or set DATABASE_URL',
  Redis: 'start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL',
  RabbitMQ: 'start it (e.g. `rabbitmq-server -detached`) or set RABBITMQ_URL',
};

const hostOf = (url: string) => new URL(url).host;
const reasonOf = (error: unknown) =>
  error instanceof Error
    ? error.message || (error as { code?: string }).code || error.name
    : String(error);

async function checkPostgres(url: string): Promise<void> {
  // The maintenance database: the app database may not exist yet (it is created next).
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({
    connectionString: maintenance.toString(),
    connectionTimeoutMillis: 3_000,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined); // reported through connect()'s rejection
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

async function checkRabbit(url: string): Promise<void> {
  const connection = await connectAmqp(url, { timeout: 3_000 });
  await connection.close();
}

/** Resolves when all three answer; otherwise returns what is wrong with each one that does not. */
export async function findUnreachableDependencies(urls: DependencyUrls): Promise<Problem[]> {
  const checks = [
    { name: 'PostgreSQL' as const, url: urls.databaseUrl, check: checkPostgres },
    { name: 'Redis' as const, url: urls.redisUrl, check: checkRedis },
    { name: 'RabbitMQ' as const, url: urls.rabbitmqUrl, check: checkRabbit },
  ];
  const results = await Promise.all(
    checks.map(async ({ name, url, check }): Promise<Problem | undefined> => {
      try {
        await check(url);
        return undefined;
      } catch (error) {
        return {
          name,
          address: hostOf(url),
          reason: reasonOf(error),
          howToStart: HOW_TO_START[name],
        };
      }
    }),
  );
  return results.filter((problem): problem is Problem => problem !== undefined);
}
