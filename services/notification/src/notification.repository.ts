import { randomUUID } from 'node:crypto';
import {
  prepared,
  type Database,
  type EmailDelivery,
  type Notification,
  type Prisma,
} from '@platform/db';
import { createEvent, type EventEnvelope } from '@platform/events';
import { processOnce, type OutboxRelay } from '@platform/outbox';
import {
  defaultsFor,
  effectiveChannels,
  isInAppLocked,
  KNOWN_TYPES,
  type Channels,
} from './notification.types';

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
   * (consumer, event): a redelivered event creates nothing and gets null. Nothing is created
   * (null) for a recipient whose `user.deleted` was handled.
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

/** A notification as raw SQL returns it (where one statement beats several). */
const NOTIFICATION_COLUMNS = `id::text, recipient_id::text, type, title, body, data, read_at,
  created_at, source_event_id::text, in_app`;

/**
 * Creating a notification, in one statement (the hot path of sending): record the event
 * (when there is one) and stop if it was seen before or the recipient was deleted; apply the
 * recipient's preference for the type; insert the notification, its outbox event for live
 * push when shown in-app, and an email delivery with its outbox event when mailed.
 */
const CREATE_NOTIFICATION = prepared(
  'notification-create',
  `WITH once AS (
     INSERT INTO "notifications"."processed_events" (consumer, event_id)
     SELECT $9, $10::uuid WHERE $9::text IS NOT NULL
     ON CONFLICT DO NOTHING RETURNING 1
   ), channels AS (
     SELECT COALESCE(p.in_app, $6) OR $7 AS in_app, COALESCE(p.email, $8) AS email
       FROM (SELECT 1) AS one
       LEFT JOIN "notifications"."preferences" p ON p.user_id = $2::uuid AND p.type = $3
      WHERE ($9::text IS NULL OR EXISTS (SELECT 1 FROM once))
        AND NOT EXISTS (SELECT 1 FROM "notifications"."deleted_recipients" d WHERE d.user_id = $2::uuid)
   ), created AS (
     INSERT INTO "notifications"."notifications"
      (id, recipient_id, type, title, body, data, in_app, source_event_id, created_at)
     SELECT $1::uuid, $2::uuid, $3, $4, $5, $11::jsonb, in_app, $10::uuid, $21::timestamptz
       FROM channels
     RETURNING *
   ), pushed AS (
     INSERT INTO "notifications"."outbox_events" (id, type, envelope, created_at)
     SELECT $12::uuid, $13, $14::jsonb, $15::timestamptz FROM created WHERE created.in_app
   ), delivery AS (
     INSERT INTO "notifications"."email_deliveries" (id, notification_id, updated_at)
     SELECT $16::uuid, created.id, now() FROM created, channels WHERE channels.email
     RETURNING id
   ), mailed AS (
     INSERT INTO "notifications"."outbox_events" (id, type, envelope, created_at)
     SELECT $17::uuid, $18, $19::jsonb, $20::timestamptz FROM delivery
   )
   SELECT ${NOTIFICATION_COLUMNS} FROM created`,
);

interface NotificationRow {
  id: string;
  recipient_id: string;
  type: string;
  title: string;
  body: string;
  data: Prisma.JsonValue | null;
  read_at: Date | null;
  created_at: Date;
  source_event_id: string | null;
  in_app: boolean;
}

function toNotification(row: NotificationRow): Notification {
  return {
    id: row.id,
    recipientId: row.recipient_id,
    type: row.type,
    title: row.title,
    body: row.body,
    data: row.data,
    readAt: row.read_at,
    createdAt: row.created_at,
    sourceEventId: row.source_event_id,
    inApp: row.in_app,
  };
}

export function createNotificationRepository(
  db: Database,
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
      const id = randomUUID();
      const deliveryId = randomUUID();
      const defaults = defaultsFor(input.type);
      const createdAt = new Date();
      const live = createEvent('notification.created', {
        notificationId: id,
        recipientId: input.recipientId,
        type: input.type,
        title: input.title,
        body: input.body,
        data: input.data,
        createdAt: createdAt.toISOString(),
      });
      const mail = createEvent('notification.email_requested', { deliveryId, notificationId: id });
      const [row] = await db.$run<NotificationRow>(CREATE_NOTIFICATION, [
        id,
        input.recipientId,
        input.type,
        input.title,
        input.body,
        defaults.inApp,
        isInAppLocked(input.type),
        defaults.email,
        source?.consumer ?? null,
        source?.eventId ?? null,
        input.data === undefined ? null : JSON.stringify(input.data),
        live.id,
        live.type,
        JSON.stringify(live),
        live.occurredAt,
        deliveryId,
        mail.id,
        mail.type,
        JSON.stringify(mail),
        mail.occurredAt,
        createdAt,
      ]);
      if (!row) return null; // an event seen before, or a deleted recipient
      relay.kick();
      return toNotification(row);
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
      const { userId } = event.payload;
      // First the tombstone, committed on its own (repeating it is harmless): every create
      // that starts after this sees it and creates nothing.
      await db.deletedRecipient.upsert({ where: { userId }, create: { userId }, update: {} });
      await db.$transaction(async (tx) => {
        if (!(await processOnce(tx, NOTIFICATIONS_SCHEMA, consumer, event.id))) return;
        // Creates that started before the tombstone may still be running: SHARE mode waits for
        // them to commit (and holds new ones back until this commits), so the deletes below
        // see every notification the user will ever have. Deletions are rare; this is brief.
        await tx.$executeRawUnsafe(
          `LOCK TABLE "${NOTIFICATIONS_SCHEMA}"."notifications" IN SHARE MODE`,
        );
        await tx.notification.deleteMany({ where: { recipientId: userId } });
        await tx.notificationPreference.deleteMany({ where: { userId } });
      });
    },
  };
}
