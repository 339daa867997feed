import type { EmailDelivery, Notification, Prisma, PrismaClient } from '@platform/db';
import { createEvent, type EventEnvelope } from '@platform/events';
import { enqueueEvent, processOnce, type OutboxRelay } from '@platform/outbox';
import { effectiveChannels, KNOWN_TYPES, type Channels } from './notification.types';

export const NOTIFICATIONS_SCHEMA = 'notifications';

export interface NewNotification {
  recipientId: string;
  type: string;
  title: string;
  body: string;
  data?: Prisma.InputJsonValue | undefined;
}

export interface NotificationPage {
  notifications: Notification[];
  hasNextPage: boolean;
  totalCount: number;
}

export interface Preference extends Channels {
  type: string;
}

export interface NotificationRepository {
  /**
   * Creates a notification as the recipient's preferences for its type say: in the inbox
   * (and pushed live through `notification.created`) and/or mailed (an `EmailDelivery` and
   * `notification.email_requested`), all in one transaction. With `source`, exactly once per
   * (consumer, event): a redelivered event creates nothing and gets null.
   */
  create(
    input: NewNotification,
    source?: { consumer: string; eventId: string },
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
  /** The recipient's own notification, or null (anyone else's is null too). */
  get(id: string, recipientId: string): Promise<Notification | null>;
  markRead(id: string, recipientId: string): Promise<Notification | null>;
  /** How many changed. */
  markAllRead(recipientId: string): Promise<number>;
  /** False when the recipient has no such notification. */
  remove(id: string, recipientId: string): Promise<boolean>;
  preferences(userId: string): Promise<Preference[]>;
  updatePreferences(
    userId: string,
    changes: { type: string; inApp?: boolean | undefined; email?: boolean | undefined }[],
  ): Promise<Preference[]>;
  deliveries(notificationIds: string[]): Promise<EmailDelivery[]>;
  /** Deletes everything of the user an event names (once per event). */
  removeRecipient(consumer: string, event: EventEnvelope<'user.deleted'>): Promise<void>;
}

export function createNotificationRepository(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
): NotificationRepository {
  const visible = { inApp: true } as const;

  async function preferences(userId: string): Promise<Preference[]> {
    const stored = await db.notificationPreference.findMany({ where: { userId } });
    const byType = new Map(stored.map((row) => [row.type, row]));
    const types = [...new Set([...Object.keys(KNOWN_TYPES), ...byType.keys()])].sort();
    return types.map((type) => ({ type, ...effectiveChannels(type, byType.get(type)) }));
  }

  return {
    async create(input, source) {
      const created = await db.$transaction(async (tx) => {
        if (
          source &&
          !(await processOnce(tx, NOTIFICATIONS_SCHEMA, source.consumer, source.eventId))
        )
          return null;
        const stored = await tx.notificationPreference.findUnique({
          where: { userId_type: { userId: input.recipientId, type: input.type } },
        });
        const channels = effectiveChannels(input.type, stored ?? undefined);
        const notification = await tx.notification.create({
          data: {
            ...input,
            data: input.data ?? undefined,
            sourceEventId: source?.eventId,
            inApp: channels.inApp,
          },
        });
        if (channels.inApp)
          await enqueueEvent(
            tx,
            NOTIFICATIONS_SCHEMA,
            createEvent('notification.created', {
              notificationId: notification.id,
              recipientId: notification.recipientId,
              type: notification.type,
            }),
          );
        if (channels.email) {
          const delivery = await tx.emailDelivery.create({
            data: { notificationId: notification.id },
          });
          await enqueueEvent(
            tx,
            NOTIFICATIONS_SCHEMA,
            createEvent('notification.email_requested', {
              deliveryId: delivery.id,
              notificationId: notification.id,
            }),
          );
        }
        return notification;
      });
      if (created) relay.kick();
      return created;
    },

    async list(recipientId, { first, after, unreadOnly }) {
      const where = { recipientId, ...visible, ...(unreadOnly ? { readAt: null } : {}) };
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

    countUnread(recipientId) {
      return db.notification.count({ where: { recipientId, ...visible, readAt: null } });
    },

    get(id, recipientId) {
      return db.notification.findFirst({ where: { id, recipientId, ...visible } });
    },

    async markRead(id, recipientId) {
      // Read once: a second call keeps the first read time.
      await db.notification.updateMany({
        where: { id, recipientId, ...visible, readAt: null },
        data: { readAt: new Date() },
      });
      return db.notification.findFirst({ where: { id, recipientId, ...visible } });
    },

    async markAllRead(recipientId) {
      const { count } = await db.notification.updateMany({
        where: { recipientId, ...visible, readAt: null },
        data: { readAt: new Date() },
      });
      return count;
    },

    async remove(id, recipientId) {
      const { count } = await db.notification.deleteMany({
        where: { id, recipientId, ...visible },
      });
      return count > 0;
    },

    preferences,

    async updatePreferences(userId, changes) {
      await db.$transaction(async (tx) => {
        for (const change of changes) {
          const stored = await tx.notificationPreference.findUnique({
            where: { userId_type: { userId, type: change.type } },
          });
          const current = effectiveChannels(change.type, stored ?? undefined);
          const next = {
            inApp: change.inApp ?? current.inApp,
            email: change.email ?? current.email,
          };
          await tx.notificationPreference.upsert({
            where: { userId_type: { userId, type: change.type } },
            create: { userId, type: change.type, ...next },
            update: next,
          });
        }
      });
      return preferences(userId);
    },

    deliveries(notificationIds) {
      return db.emailDelivery.findMany({
        where: { notificationId: { in: notificationIds } },
        orderBy: { createdAt: 'asc' },
      });
    },

    async removeRecipient(consumer, event) {
      await db.$transaction(async (tx) => {
        if (!(await processOnce(tx, NOTIFICATIONS_SCHEMA, consumer, event.id))) return;
        await tx.notification.deleteMany({ where: { recipientId: event.payload.userId } });
        await tx.notificationPreference.deleteMany({ where: { userId: event.payload.userId } });
      });
    },
  };
}
