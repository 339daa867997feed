import { connectDatabase, prepared, type Database } from '@platform/db';
import type { Lifecycle } from '@platform/lifecycle';
import type { Logger } from '@platform/logger';
import { appNameOf, serveMetrics } from '@platform/metrics';
import { createMessageBroker, type MessageBroker } from '@platform/messaging';
import { createOutboxRelay, type OutboxRelay } from '@platform/outbox';
import { createRedis, type Redis } from '@platform/redis';
import { monitorDependencies, type DependencyMonitor } from './dependency-monitor';
import { exportDependencyStatus, exportPoolStats } from './service.metrics';

/** What every domain service stands on. */
export interface ServiceInfrastructure {
  db: Database;
  redis: Redis;
  broker: MessageBroker;
  /** Publishes the service's outbox (its own Postgres schema). */
  relay: OutboxRelay;
  /**
   * PostgreSQL, Redis and RabbitMQ probed every second (`postgresql`, `redis`, `rabbitmq`):
   * `serveGrpc` reports them through the gRPC health service.
   */
  dependencies: DependencyMonitor;
}

const SELECT_ONE = prepared('health-select-one', 'SELECT 1');

// The monitor of the infrastructure opened with a lifecycle, for `serveGrpc` with the same
// lifecycle (a service's main passes its one lifecycle to both).
const monitors = new WeakMap<object, DependencyMonitor>();

/** The dependency monitor `openServiceInfrastructure` started with this lifecycle, if any. */
export function dependencyMonitorOf(lifecycle: object): DependencyMonitor | undefined {
  return monitors.get(lifecycle);
}

interface InfrastructureEnv {
  /** The host of the service's internal listeners (gRPC, and `/metrics` on METRICS_PORT). */
  GRPC_HOST: string;
  /** The internal `/metrics` port; 0 turns it off. */
  METRICS_PORT: number;
  DATABASE_URL: string;
  REDIS_URL: string;
  REDIS_KEY_PREFIX: string;
  RABBITMQ_URL: string;
  EVENTS_EXCHANGE: string;
  EVENTS_QUEUE_EXPIRES_MS?: number | undefined;
}

/**
 * Connects PostgreSQL, Redis and RabbitMQ and starts the outbox relay, in that order,
 * registering each teardown as soon as the resource exists (so they close in reverse).
 */
export async function openServiceInfrastructure(options: {
  env: InfrastructureEnv;
  /** The service's Postgres schema, whose outbox the relay drains. */
  schema: string;
  logger: Logger;
  lifecycle: Lifecycle;
}): Promise<ServiceInfrastructure> {
  const { env, logger, lifecycle } = options;
  // Named after the app's logger (`user-service`, ...): the `app` label of every metric.
  await serveMetrics({
    app: appNameOf(logger, 'service'),
    host: env.GRPC_HOST,
    port: env.METRICS_PORT,
    logger,
    lifecycle,
  });
  const db = await connectDatabase({
    databaseUrl: env.DATABASE_URL,
    onPoolError: (error) => logger.warn({ err: error }, 'idle database connection failed'),
  });
  lifecycle.onShutdown('database', () => db.$disconnect());
  exportPoolStats(db);

  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, logger });
  lifecycle.onShutdown('redis', async () => void (await redis.quit()));

  const broker = await createMessageBroker({
    url: env.RABBITMQ_URL,
    exchange: env.EVENTS_EXCHANGE,
    queueExpiresMs: env.EVENTS_QUEUE_EXPIRES_MS,
    logger,
  });
  lifecycle.onShutdown('rabbitmq', () => broker.close());

  const relay = createOutboxRelay({ db, schema: options.schema, broker, logger });
  lifecycle.onShutdown('outbox relay', () => relay.stop());

  const dependencies = monitorDependencies({
    checks: [
      { name: 'postgresql', check: () => db.$run(SELECT_ONE, []) },
      { name: 'redis', check: () => redis.ping() },
      { name: 'rabbitmq', check: async () => broker.isConnected() },
    ],
    logger,
  });
  lifecycle.onShutdown('dependency probes', () => dependencies.stop());
  monitors.set(lifecycle, dependencies);
  exportDependencyStatus(dependencies);

  return { db, redis, broker, relay, dependencies };
}
