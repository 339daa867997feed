import { bindService, managedClients } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { createMailer } from '@platform/mail';
import { openServiceInfrastructure, serveGrpc } from '@platform/service-runtime';
import { notificationV1, userV1 } from '@platform/proto';
import { createEmailDeliveryRepository } from './email-delivery.repository';
import { createEmailDeliveryService } from './email-delivery.service';
import { env } from './environment';
import { startNotificationConsumers } from './notification.consumers';
import { createNotificationHandlers } from './notification.grpc';
import { createNotificationRepository, NOTIFICATIONS_SCHEMA } from './notification.repository';
import { createNotificationService } from './notification.service';
import { createPreferenceService } from './preference.service';
import { createRecipientDirectory } from './recipient.directory';
import { createInboxHeadCache } from './inbox-head.cache';

const logger = createLogger({ name: 'notification-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { db, redis, broker, relay } = await openServiceInfrastructure({
    env,
    schema: NOTIFICATIONS_SCHEMA,
    logger,
    lifecycle,
  });

  const client = managedClients({
    internalToken: env.INTERNAL_TOKEN,
    onShutdown: (name, teardown) => lifecycle.onShutdown(name, teardown),
  });
  const users = client('user', userV1.UserServiceService, env.USER_SERVICE_ADDR);
  // One attempt per delivery of the message: the broker's retry queues do the back-off.
  const mailer = createMailer({
    smtpUrl: env.SMTP_URL,
    from: env.MAIL_FROM,
    logBodies: env.MAIL_LOG_BODIES,
    logger,
    retryDelaysMs: [],
  });
  lifecycle.onShutdown('mailer', () => mailer.close());

  const repository = createNotificationRepository(db);
  const notifications = createNotificationService({
    notifications: repository,
    inboxHeads: createInboxHeadCache(redis, logger),
    recipients: createRecipientDirectory(users),
    relay,
  });
  const deliveries = createEmailDeliveryService({
    deliveries: createEmailDeliveryRepository(db),
    users,
    mailer,
    logger,
    maxAttempts: env.NOTIFICATION_EMAIL_RETRY_DELAYS_MS.length + 1,
  });
  await startNotificationConsumers({
    broker,
    notifications,
    deliveries,
    emailRetryDelaysMs: env.NOTIFICATION_EMAIL_RETRY_DELAYS_MS,
    queuePrefix: env.EVENTS_EXCHANGE,
  });

  await serveGrpc({
    env,
    logger,
    lifecycle,
    service: bindService({
      name: 'notification.v1.NotificationService',
      definition: notificationV1.NotificationServiceService,
      handlers: createNotificationHandlers({
        notifications,
        preferences: createPreferenceService({ notifications: repository }),
        deliveries,
      }),
    }),
  });
});
