import { connectDatabase } from '@platform/db';
import { bindService, createGrpcServer } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { createMessageBroker } from '@platform/messaging';
import { createOutboxRelay } from '@platform/outbox';
import { notificationV1 } from '@platform/proto';
import { createRedis } from '@platform/redis';
import { env } from './environment';
import { startNotificationConsumers } from './notification.consumers';
import { createNotificationHandlers } from './notification.grpc';
import { createNotificationRepository, NOTIFICATIONS_SCHEMA } from './notification.repository';
import { createUnreadCountCache } from './unread-count.cache';

const logger = createLogger({ name: 'notification-service', level: env.LOG_LEVEL });
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

  const relay = createOutboxRelay({ db, schema: NOTIFICATIONS_SCHEMA, broker, logger });
  lifecycle.onShutdown('outbox relay', () => relay.stop());

  const unreadCounts = createUnreadCountCache(redis);
  const notifications = createNotificationRepository(db, relay);
  await startNotificationConsumers({
    broker,
    notifications,
    unreadCounts,
    queuePrefix: env.EVENTS_EXCHANGE,
  });

  const server = createGrpcServer({
    logger,
    internalToken: env.INTERNAL_TOKEN,
    services: [
      bindService({
        name: 'notification.v1.NotificationService',
        definition: notificationV1.NotificationServiceService,
        handlers: createNotificationHandlers({ notifications, unreadCounts }),
      }),
    ],
  });
  lifecycle.onShutdown('grpc server', () => server.close(env.SHUTDOWN_TIMEOUT_MS / 2));
  await server.listen(env.GRPC_HOST, env.GRPC_PORT);
});
