import { bindService, createGrpcServer } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { openServiceInfrastructure } from '@platform/service-runtime';
import { notificationV1 } from '@platform/proto';
import { env } from './environment';
import { startNotificationConsumers } from './notification.consumers';
import { createNotificationHandlers } from './notification.grpc';
import { createNotificationRepository, NOTIFICATIONS_SCHEMA } from './notification.repository';
import { createUnreadCountCache } from './unread-count.cache';

const logger = createLogger({ name: 'notification-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { db, redis, broker, relay } = await openServiceInfrastructure({
    env,
    schema: NOTIFICATIONS_SCHEMA,
    logger,
    lifecycle,
  });

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
