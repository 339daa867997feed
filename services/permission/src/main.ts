import { connectDatabase } from '@platform/db';
import { bindService, createGrpcServer } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { createMessageBroker } from '@platform/messaging';
import { createOutboxRelay } from '@platform/outbox';
import { permissionV1 } from '@platform/proto';
import { createRedis } from '@platform/redis';
import { env } from './environment';
import { createPermissionCache } from './permission.cache';
import { startPermissionConsumers } from './permission.consumers';
import { createPermissionHandlers } from './permission.grpc';
import { createPermissionRepository, RBAC_SCHEMA } from './permission.repository';

const logger = createLogger({ name: 'permission-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const db = await connectDatabase({ databaseUrl: env.DATABASE_URL });
  lifecycle.onShutdown('database', () => db.$disconnect());

  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, logger });
  lifecycle.onShutdown('redis', async () => void (await redis.quit()));

  const broker = await createMessageBroker({
    url: env.RABBITMQ_URL,
    exchange: env.EVENTS_EXCHANGE,
    queueExpiresMs: env.EVENTS_QUEUE_EXPIRES_MS,
    logger,
  });
  lifecycle.onShutdown('rabbitmq', () => broker.close());

  const relay = createOutboxRelay({ db, schema: RBAC_SCHEMA, broker, logger });
  lifecycle.onShutdown('outbox relay', () => relay.stop());

  const roles = createPermissionRepository(db, relay);
  await roles.ensureBuiltInRoles();

  const cache = createPermissionCache(redis);
  await startPermissionConsumers({ broker, db, cache, queuePrefix: env.EVENTS_EXCHANGE });

  const server = createGrpcServer({
    logger,
    internalToken: env.INTERNAL_TOKEN,
    services: [
      bindService({
        name: 'permission.v1.PermissionService',
        definition: permissionV1.PermissionServiceService,
        handlers: createPermissionHandlers({ roles, cache }),
      }),
    ],
  });
  lifecycle.onShutdown('grpc server', () => server.close(env.SHUTDOWN_TIMEOUT_MS / 2));
  await server.listen(env.GRPC_HOST, env.GRPC_PORT);
});
