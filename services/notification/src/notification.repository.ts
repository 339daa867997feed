import type { Notification, Prisma, PrismaClient } from '@platform/db';
import { createEvent, type EventEnvelope } from '@platform/events';
import { enqueueEvent, processOnce, type OutboxRelay } from '@platform/outbox';

export const NOTIFICATIONS_SCHEMA = 'notifications';

export interface NewNotification {
  recipientId: string;
  type: string;
  title: string;
  body: string;
  data?: Prisma.InputJsonObject;
}

export interface NotificationPage {
  notifications: Notification[];
  hasNextPage: boolean;
  totalCount: number;
}

export interface NotificationRepository {
  /**
   * Creates the notification an event calls for, exactly once per (consumer, event): a
   * redelivered event finds its id recorded and creates nothing. Returns null then.
   */
  createFromEvent(
    consumer: string,
    event: EventEnvelope,
    notification: NewNotification,
  ): Promise<Notification | null>;
  list(
    recipientId: string,
    page: {
      first: number;
      after?: { createdAt: Date; id: string } | undefined;
      unreadOnly: boolean;
    },
  ): Promise<NotificationPage>;
  countUnread(recipientId: string): Promise<number>;
  /** Deletes everything of the user an event names (once per event). */
  removeRecipient(consumer: string, event: EventEnvelope<'user.deleted'>): Promise<void>;
}

export function createNotificationRepository(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
): NotificationRepository {
  return {
    async createFromEvent(consumer, event, input) {
      const created = await db.$transaction(async (tx) => {
        if (!(await processOnce(tx, NOTIFICATIONS_SCHEMA, consumer, event.id))) return null;
        const notification = await tx.notification.create({
          data: { ...input, data: input.data ?? undefined, sourceEventId: event.id },
        });
        await enqueueEvent(
          tx,
          NOTIFICATIONS_SCHEMA,
          createEvent('notification.created', {
            notificationId: notification.id,
            recipientId: notification.recipientId,
            type: notification.type,
          }),
        );
        return notification;
      });
      if (created) relay.kick();
      return created;
    },
    async list(recipientId, { first, after, unreadOnly }) {
      const where = { recipientId, ...(unreadOnly ? { readAt: null } : {}) };
      const [rows, totalCount] = await Promise.all([
        db.notification.findMany({
          where: after
            ? {
                ...where,
                OR: [
                  { createdAt: { lt: after.createdAt } },
                  { createdAt: after.createdAt, id: { lt: after.id } },
                ],
              }
            : where,
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          take: first + 1,
        }),
        db.notification.count({ where }),
      ]);
      return { notifications: rows.slice(0, first), hasNextPage: rows.length > first, totalCount };
    },
    async removeRecipient(consumer, event) {
      await db.$transaction(async (tx) => {
        if (!(await processOnce(tx, NOTIFICATIONS_SCHEMA, consumer, event.id))) return;
        await tx.notification.deleteMany({ where: { recipientId: event.payload.userId } });
      });
    },
    countUnread(recipientId) {
      return db.notification.count({ where: { recipientId, readAt: null } });
    },
  };
}
