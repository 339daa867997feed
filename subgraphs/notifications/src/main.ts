import { randomUUID } from 'node:crypto';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { createMessageBroker } from '@platform/messaging';
import { notificationV1 } from '@platform/proto';
import { loadTypeDefs, openSubgraphRuntime } from '@platform/subgraph';
import { env } from './environment';
import { createLiveHub } from './live-hub';
import { createLivePush } from './live-push';
import {
  createDeliveryLoader,
  createInbox,
  notificationsResolvers,
} from './notifications.resolvers';

const logger = createLogger({ name: 'notifications-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const runtime = await openSubgraphRuntime({ env, logger, lifecycle });
  const notifications = runtime.client(
    'notification',
    notificationV1.NotificationServiceService,
    env.NOTIFICATION_SERVICE_ADDR,
  );

  // Live push: this instance's own queue receives every new notification (the event carries
  // it whole, in the shape pushed), and the ones whose recipient has a subscription open
  // here are pushed to it.
  const live = createLiveHub<notificationV1.Notification>();
  lifecycle.onShutdown('live subscriptions', () => live.close());
  const broker = await createMessageBroker({
    url: env.RABBITMQ_URL,
    exchange: env.EVENTS_EXCHANGE,
    logger,
  });
  lifecycle.onShutdown('rabbitmq', () => broker.close());
  // Each event once, however often it arrives (live-push.ts).
  const push = createLivePush(live);
  // Ends this instance's live subscriptions: none until the subgraph serves them (below).
  let endLiveSubscriptions = (): number => 0;
  await broker.consume({
    queue: `${env.EVENTS_EXCHANGE}.notifications-subgraph.live.${randomUUID()}`,
    events: ['notification.created'],
    ephemeral: true,
    handle: async (event) => push(event),
    // The queue was gone for a while (the broker connection dropped): notifications created
    // meanwhile never reached this instance's subscribers. End every live subscription here
    // (the gateways' connections close with 1012, and so do their clients'), so that each
    // subscriber reconnects and catches up by query instead of silently missing them.
    onRedeclared: () => {
      const closed = endLiveSubscriptions();
      logger.warn({ closed }, 'live notifications missed; live subscriptions ended');
    },
  });

  const subgraph = await runtime.serve({
    name: 'notifications',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: notificationsResolvers,
    createContext: (base) => ({
      ...base,
      notifications,
      live,
      deliveries: createDeliveryLoader(notifications),
      inbox: createInbox(notifications),
    }),
    subscriptions: true,
  });
  endLiveSubscriptions = () => subgraph.restartSubscriptions('Live events were missed; reconnect');
});
