import { randomUUID } from 'node:crypto';
import { createGrpcClient } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { createMessageBroker } from '@platform/messaging';
import { authV1, notificationV1, permissionV1 } from '@platform/proto';
import { createSubgraph, loadTypeDefs } from '@platform/subgraph';
import { createRedis } from '@platform/redis';
import { createSessionRevocations, createTokenVerifier } from '@platform/tokens';
import { env } from './environment';
import { createLiveHub } from './live-hub';
import { createDeliveryLoader, notificationsResolvers } from './notifications.resolvers';

const logger = createLogger({ name: 'notifications-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  // Ended sessions are looked up in Redis, so their access tokens stop working at once.
  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, logger });
  lifecycle.onShutdown('redis', async () => void (await redis.quit()));
  const revocations = createSessionRevocations(redis);

  const grpc = { internalToken: env.INTERNAL_TOKEN };
  const auth = createGrpcClient(authV1.AuthServiceService, {
    ...grpc,
    address: env.AUTH_SERVICE_ADDR,
  });
  lifecycle.onShutdown('auth client', () => auth.close());
  const notifications = createGrpcClient(notificationV1.NotificationServiceService, {
    ...grpc,
    address: env.NOTIFICATION_SERVICE_ADDR,
  });
  lifecycle.onShutdown('notification client', () => notifications.close());
  const permissions = createGrpcClient(permissionV1.PermissionServiceService, {
    ...grpc,
    address: env.PERMISSION_SERVICE_ADDR,
  });
  lifecycle.onShutdown('permission client', () => permissions.close());

  // Live push: this instance's own queue receives every new notification; the ones whose
  // recipient has a subscription open here are read once and pushed to it.
  const live = createLiveHub<notificationV1.Notification>();
  lifecycle.onShutdown('live subscriptions', () => live.close());
  const broker = await createMessageBroker({
    url: env.RABBITMQ_URL,
    exchange: env.EVENTS_EXCHANGE,
    logger,
  });
  lifecycle.onShutdown('rabbitmq', () => broker.close());
  await broker.consume({
    queue: `${env.EVENTS_EXCHANGE}.notifications-subgraph.live.${randomUUID()}`,
    events: ['notification.created'],
    ephemeral: true,
    handle: async (event) => {
      const { notificationId, recipientId, type, title, body, data, createdAt } = event.payload;
      // New, so unread; the event carries all of it (no read-back per push).
      live.publish(recipientId, {
        id: notificationId,
        recipientId,
        type,
        title,
        body,
        dataJson: data === undefined || data === null ? '' : JSON.stringify(data),
        readAt: undefined,
        createdAt: new Date(createdAt),
      });
    },
  });

  const subgraph = createSubgraph({
    name: 'notifications',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: notificationsResolvers,
    createContext: (base) => ({
      ...base,
      notifications,
      live,
      deliveries: createDeliveryLoader(notifications),
    }),
    logger,
    permissionService: permissions,
    subscriptions: { internalToken: env.INTERNAL_TOKEN },
    tokens: createTokenVerifier({
      issuer: env.TOKEN_ISSUER,
      audience: env.TOKEN_AUDIENCE,
      fetchJwks: async () => (await auth.getJwks({})).keys,
      isRevoked: (sessionId) => revocations.isRevoked(sessionId),
    }),
  });
  lifecycle.onShutdown('http server', () => subgraph.stop());
  await subgraph.start(env.HOST, env.PORT);
});
