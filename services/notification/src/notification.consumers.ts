import type { MessageBroker } from '@platform/messaging';
import type { NotificationRepository } from './notification.repository';
import type { UnreadCountCache } from './unread-count.cache';

const WELCOME_CONSUMER = 'notification.welcome';
const USER_DELETED_CONSUMER = 'notification.user-deleted';

/** Notifications that domain events call for. Each handler is idempotent per event id. */
export async function startNotificationConsumers(deps: {
  broker: MessageBroker;
  notifications: NotificationRepository;
  unreadCounts: UnreadCountCache;
  /** Queues are named after the exchange, so isolated runs never share a queue. */
  queuePrefix: string;
}): Promise<void> {
  const { broker, notifications, unreadCounts } = deps;
  await broker.consume({
    queue: `${deps.queuePrefix}.${WELCOME_CONSUMER}`,
    events: ['user.registered'],
    async handle(event) {
      const created = await notifications.createFromEvent(WELCOME_CONSUMER, event, {
        recipientId: event.payload.userId,
        type: 'welcome',
        title: `Welcome, ${event.payload.displayName}!`,
        body: 'Your account is ready.',
      });
      if (created) await unreadCounts.forget(created.recipientId);
    },
  });
  // A deleted user's notifications go with them.
  await broker.consume({
    queue: `${deps.queuePrefix}.${USER_DELETED_CONSUMER}`,
    events: ['user.deleted'],
    async handle(event) {
      await notifications.removeRecipient(USER_DELETED_CONSUMER, event);
      await unreadCounts.forget(event.payload.userId);
    },
  });
}
