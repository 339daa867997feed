import {
  prepared,
  type Database,
  type Notification,
  type NotificationPreference,
  type Prisma,
} from '@platform/db';
import type { EventEnvelope } from '@platform/events';
import { createOutboxInsert, processOnce } from '@platform/outbox';
import type { CursorPosition, KeysetPage } from '@platform/validation';
import type { Channels } from './notification.types';

export const NOTIFICATIONS_SCHEMA = 'notifications';

/** What one create writes, in one statement. */
export interface NotificationWrite {
  /** The notification as its event carries it; pushed live when it is shown in-app. */
  created: EventEnvelope<'notification.created'>;
  /** Written, with the delivery it names, when the channels say to mail it. */
  emailRequested: EventEnvelope<'notification.email_requested'>;
  /** The type's channels where the recipient stored no preference for it. */
  defaults: Channels;
  /** Shown in-app whatever the recipient's preference says. */
  inAppLocked: boolean;
  /** The event it comes from: then written at most once per (consumer, event). */
  source?: { consumer: string; eventId: string } | undefined;
}

/** The top of a recipient's inbox (see `NotificationRepository.inboxHead`). */
export interface InboxHead {
  /** How many notifications are shown in-app. */
  total: number;
  /** How many of those are unread. */
  unread: number;
  /** The newest of them, newest first. */
  newest: Notification[];
}

/** The queries a use case may run inside one transaction. */
export interface NotificationTransaction {
  /** Records that `consumer` handled the event; false when it already had. */
  processOnce(consumer: string, eventId: string): Promise<boolean>;
  /**
   * Waits for the creates running now to commit and holds new ones back until this
   * transaction ends (SHARE lock on the notifications table).
   */
  holdBackCreates(): Promise<void>;
  removeAllOf(recipientId: string): Promise<void>;
  /**
   * Sets the channels `change` gives over the stored ones (over `defaults` when none are
   * stored), in one statement: concurrent changes of one preference all take effect.
   */
  changePreference(
    userId: string,
    type: string,
    change: Partial<Channels>,
    defaults: Channels,
  ): Promise<void>;
  removePreferencesOf(userId: string): Promise<void>;
  /**
   * Waits for any other transaction changing the user's preferences to end, and holds the next
   * ones back until this one ends (an advisory lock per user).
   */
  lockPreferencesOf(userId: string): Promise<void>;
  /** The types the user stored a preference for. */
  preferenceTypesOf(userId: string): Promise<string[]>;
}

export interface NotificationRepository {
  /**
   * Writes the notification with the channels the recipient's stored preference (else
   * `defaults`, with in-app forced on when locked) gives: in the inbox with its
   * `notification.created`, and/or an email delivery with `notification.email_requested`.
   * Null when nothing was written: `source` was handled before, or the recipient is deleted.
   */
  create(write: NotificationWrite): Promise<Notification | null>;
  /** Newest first; only what is shown in-app. */
  list(
    recipientId: string,
    page: { first: number; after?: CursorPosition | undefined; unreadOnly: boolean },
  ): Promise<KeysetPage<Notification>>;
  /**
   * What an inbox opens with, from one snapshot: how many notifications are shown and unread,
   * and the newest `size` of them, newest first.
   */
  inboxHead(recipientId: string, size: number): Promise<InboxHead>;
  /** The recipient's own notification, or null (anyone else's is null too). */
  get(id: string, recipientId: string): Promise<Notification | null>;
  /** Read once: a second call keeps the first read time. Null when not the recipient's. */
  markRead(id: string, recipientId: string): Promise<Notification | null>;
  /** How many changed. */
  markAllRead(recipientId: string): Promise<number>;
  /** False when the recipient has no such notification. */
  remove(id: string, recipientId: string): Promise<boolean>;
  /** From now on nothing is created for the user (repeating it is harmless). */
  recordDeletedRecipient(userId: string): Promise<void>;
  /** Whether the user was recorded as deleted. */
  isDeletedRecipient(userId: string): Promise<boolean>;
  /** The notification created for this source (an event, or a send's idempotency key), shown or not. */
  findBySource(sourceEventId: string): Promise<Notification | null>;
  preferencesOf(userId: string): Promise<NotificationPreference[]>;
  transaction<T>(work: (tx: NotificationTransaction) => Promise<T>): Promise<T>;
}

/** A notification from raw SQL (where one statement beats several), as Prisma returns it. */
const NOTIFICATION_COLUMNS = `id::text, recipient_id::text AS "recipientId", type, title, body,
  data, read_at AS "readAt", created_at AS "createdAt",
  source_event_id::text AS "sourceEventId", in_app AS "inApp"`;

const pushed = createOutboxInsert(NOTIFICATIONS_SCHEMA, {
  firstParameter: 14,
  from: 'FROM created WHERE created.in_app',
});
const mailed = createOutboxInsert(NOTIFICATIONS_SCHEMA, {
  firstParameter: 18,
  from: 'FROM delivery',
});

/**
 * Creating a notification, in one statement (the hot path of sending): stop if the recipient
 * was deleted (recording nothing: a send's idempotency key stays unused) or the event (when
 * there is one) was seen before, else record it; apply the recipient's preference for the
 * type; insert the notification, its outbox event for live push when shown in-app, and an
 * email delivery with its outbox event when mailed.
 */
const CREATE_NOTIFICATION = prepared(
  'notification-create',
  `WITH once AS (
     INSERT INTO "notifications"."processed_events" (consumer, event_id)
     SELECT $9, $10::uuid WHERE $9::text IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM "notifications"."deleted_recipients" d WHERE d.user_id = $2::uuid)
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
     SELECT $1::uuid, $2::uuid, $3, $4, $5, $11::jsonb, in_app, $10::uuid, $12::timestamptz
       FROM channels
     RETURNING *
   ), pushed AS (
     ${pushed.sql}
   ), delivery AS (
     INSERT INTO "notifications"."email_deliveries" (id, notification_id, updated_at)
     SELECT $13::uuid, created.id, now() FROM created, channels WHERE channels.email
     RETURNING id
   ), mailed AS (
     ${mailed.sql}
   )
   SELECT ${NOTIFICATION_COLUMNS} FROM created`,
);

/**
 * A page of the recipient's visible notifications, newest first, after the cursor ($3, $4) if
 * any, only the unread ones if $2, with how many match on every page: one statement (the hot
 * path of every inbox). A page past the end is one row of nulls holding the count.
 */
const LIST_NOTIFICATIONS = prepared(
  'notification-list',
  `WITH matching AS (
     SELECT * FROM "notifications"."notifications"
      WHERE recipient_id = $1::uuid AND in_app AND (NOT $2::boolean OR read_at IS NULL)
   ), total AS (
     SELECT count(*)::int AS "totalCount" FROM matching
   )
   SELECT total."totalCount", page.* FROM total LEFT JOIN LATERAL (
     SELECT ${NOTIFICATION_COLUMNS} FROM matching
      WHERE $3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid)
      ORDER BY created_at DESC, id DESC
      LIMIT $5
   ) page ON true`,
);

const INBOX_HEAD = prepared(
  'notification-inbox-head',
  `WITH shown AS (
     SELECT * FROM "notifications"."notifications" WHERE recipient_id = $1::uuid AND in_app
   ), counts AS (
     SELECT count(*)::int AS "totalCount",
            (count(*) FILTER (WHERE read_at IS NULL))::int AS "unreadCount"
       FROM shown
   )
   SELECT counts."totalCount", counts."unreadCount", newest.* FROM counts LEFT JOIN LATERAL (
     SELECT ${NOTIFICATION_COLUMNS} FROM shown ORDER BY created_at DESC, id DESC LIMIT $2
   ) newest ON true`,
);

function transactionQueries(tx: Prisma.TransactionClient): NotificationTransaction {
  return {
    processOnce: (consumer, eventId) => processOnce(tx, NOTIFICATIONS_SCHEMA, consumer, eventId),
    async holdBackCreates() {
      await tx.$executeRawUnsafe(
        `LOCK TABLE "${NOTIFICATIONS_SCHEMA}"."notifications" IN SHARE MODE`,
      );
    },
    async removeAllOf(recipientId) {
      await tx.notification.deleteMany({ where: { recipientId } });
    },
    async changePreference(userId, type, { inApp, email }, defaults) {
      await tx.notificationPreference.upsert({
        where: { userId_type: { userId, type } },
        create: { userId, type, inApp: inApp ?? defaults.inApp, email: email ?? defaults.email },
        update: { inApp, email },
      });
    },
    async removePreferencesOf(userId) {
      await tx.notificationPreference.deleteMany({ where: { userId } });
    },
    async lockPreferencesOf(userId) {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('notifications.preferences'), hashtext(${userId}))`;
    },
    async preferenceTypesOf(userId) {
      const rows = await tx.notificationPreference.findMany({
        where: { userId },
        select: { type: true },
      });
      return rows.map((row) => row.type);
    },
  };
}

export function createNotificationRepository(db: Database): NotificationRepository {
  // What the recipient switched off in-app is kept (and mailed) but not listed or counted.
  const visible = { inApp: true } as const;

  return {
    async create({ created, emailRequested, defaults, inAppLocked, source }) {
      const notification = created.payload;
      const [row] = await db.$run<Notification>(CREATE_NOTIFICATION, [
        notification.id,
        notification.recipientId,
        notification.type,
        notification.title,
        notification.body,
        defaults.inApp,
        inAppLocked,
        defaults.email,
        source?.consumer ?? null,
        source?.eventId ?? null,
        notification.data === undefined ? null : JSON.stringify(notification.data),
        notification.createdAt,
        emailRequested.payload.deliveryId,
        ...pushed.values(created),
        ...mailed.values(emailRequested),
      ]);
      return row ?? null;
    },

    async list(recipientId, { first, after, unreadOnly }) {
      const rows = await db.$run<Notification & { totalCount: number }>(LIST_NOTIFICATIONS, [
        recipientId,
        unreadOnly,
        after?.createdAt ?? null,
        after?.id ?? null,
        first + 1,
      ]);
      const page = rows
        .filter((row) => row.id !== null)
        .map(({ totalCount: _, ...notification }) => notification);
      return {
        rows: page.slice(0, first),
        hasNextPage: page.length > first,
        totalCount: rows[0]?.totalCount ?? 0,
      };
    },

    async inboxHead(recipientId, size) {
      const rows = await db.$run<Notification & { totalCount: number; unreadCount: number }>(
        INBOX_HEAD,
        [recipientId, size],
      );
      return {
        total: rows[0]?.totalCount ?? 0,
        unread: rows[0]?.unreadCount ?? 0,
        newest: rows
          .filter((row) => row.id !== null)
          .map(({ totalCount: _, unreadCount: __, ...notification }) => notification),
      };
    },

    get(id, recipientId) {
      return db.notification.findFirst({ where: { id, recipientId, ...visible } });
    },

    async markRead(id, recipientId) {
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

    async recordDeletedRecipient(userId) {
      await db.deletedRecipient.createMany({ data: [{ userId }], skipDuplicates: true });
    },

    async isDeletedRecipient(userId) {
      return (await db.deletedRecipient.count({ where: { userId } })) > 0;
    },

    findBySource(sourceEventId) {
      return db.notification.findUnique({ where: { sourceEventId } });
    },

    preferencesOf(userId) {
      return db.notificationPreference.findMany({ where: { userId } });
    },

    transaction: (work) => db.$transaction((tx) => work(transactionQueries(tx))),
  };
}
