import { createHash, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Notification } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent, type EventEnvelope } from '@platform/events';
import type { OutboxRelay } from '@platform/outbox';
import { requireId, type CursorPosition, type KeysetPage } from '@platform/validation';
import { INBOX_HEAD_SIZE, type InboxHeadCache } from './inbox-head.cache';
import type { NotificationRepository, NotificationWrite } from './notification.repository';
import { defaultsFor, isInAppLocked, isReservedType, requireType } from './notification.types';
import type { RecipientDirectory } from './recipient.directory';

const MAX_PAGE = 100;
const MAX_TITLE = 200;
const MAX_BODY = 5_000;
const MAX_DATA_BYTES = 16 * 1024;

export interface NewNotification {
  recipientId: string;
  type: string;
  title: string;
  body: string;
  /** Any JSON value; absent when undefined. */
  data?: unknown;
}

export interface NotificationService {
  /**
   * The recipient's notifications shown in-app, newest first, and how many are unread when
   * `withUnreadCount` asks. The first page is read from the inbox head, cached (see
   * InboxHeadCache).
   */
  list(query: {
    recipientId: string;
    first: number;
    after?: CursorPosition | undefined;
    unreadOnly: boolean;
    withUnreadCount?: boolean;
  }): Promise<KeysetPage<Notification> & { unreadCount?: number | undefined }>;
  countUnread(recipientId: string): Promise<number>;
  /** NOT_FOUND unless it is the recipient's own. */
  get(id: string, recipientId: string): Promise<Notification>;
  /**
   * Sends a notification (after checking the input) to a user who must exist: NOT_FOUND for
   * an unknown or deleted recipient. With an idempotency key, once per (sender, key): a repeat
   * creates nothing and answers the notification the first created (BAD_USER_INPUT on
   * `idempotencyKey` if it named another recipient, type, title, body or data; CONFLICT if that
   * notification is gone).
   */
  send(input: NewNotification, keyed?: SendKey): Promise<Notification>;
  markRead(id: string, recipientId: string): Promise<Notification>;
  /** How many changed. */
  markAllRead(recipientId: string): Promise<number>;
  remove(id: string, recipientId: string): Promise<void>;
  /** The notification an event calls for, created once per (consumer, event). */
  notify(consumer: string, eventId: string, input: NewNotification): Promise<void>;
  /** A deleted user's notifications and preferences go with them (once per event). */
  removeRecipient(consumer: string, event: EventEnvelope<'user.deleted'>): Promise<void>;
}

/** Who sends, and the key they chose for this notification (absent or empty: none). */
export interface SendKey {
  /** Empty for the platform (which sends no key). */
  senderId: string;
  idempotencyKey?: string | undefined;
}

/** The consumer name a keyed send records its key under (in `processed_events`). */
export const KEYED_SEND = 'api.send';
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * The source id a keyed send's notification carries: a UUID derived from the sender and the key,
 * so one sender's key never meets another's.
 */
export function keyedSourceId(senderId: string, key: string): string {
  const hash = createHash('sha256').update(`${senderId}\0${key}`).digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50; // version 5 (name-based, here with SHA-256)
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80; // the RFC 4122 variant
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Whether a repeat's `data` is what the first send stored: the same JSON, whatever the order of
 * its keys (PostgreSQL's jsonb keeps them in its own), no data and `null` alike.
 */
function sameData(stored: unknown, sent: unknown): boolean {
  const asStored = sent === undefined ? null : (JSON.parse(JSON.stringify(sent)) as unknown);
  return isDeepStrictEqual(stored ?? null, asStored);
}

/** What a caller of the API may send: never one of the platform's own notice types. */
function checkSent(input: NewNotification): NewNotification {
  const recipientId = requireId('userId', input.recipientId);
  // A "security" notice (or a welcome) from anyone but the platform would be phishing, and so
  // would one that only looks like it (`security.password`, `Welcome-back`).
  if (isReservedType(input.type))
    throw AppError.badInput('type', 'is reserved for notices the platform sends itself');
  const type = requireType(input.type);
  const title = input.title.trim();
  if (title.length < 1 || title.length > MAX_TITLE)
    throw AppError.badInput('title', `must be 1 to ${MAX_TITLE} characters`);
  if (input.body.length > MAX_BODY)
    throw AppError.badInput('body', `must be at most ${MAX_BODY} characters`);
  if (input.data !== undefined && Buffer.byteLength(JSON.stringify(input.data)) > MAX_DATA_BYTES)
    throw AppError.badInput('data', 'must be at most 16 KB of JSON');
  return { recipientId, type, title, body: input.body, data: input.data };
}

/**
 * What creating a notification writes: the notification as `notification.created` carries it,
 * its email request, and the type's channels (the recipient's stored preference wins, but a
 * locked in-app channel stays on).
 */
export function composeNotification(
  input: NewNotification,
  options: { source?: NotificationWrite['source']; createdAt?: Date } = {},
): NotificationWrite {
  const id = randomUUID();
  return {
    created: createEvent('notification.created', {
      id,
      recipientId: input.recipientId,
      type: input.type,
      title: input.title,
      body: input.body,
      data: input.data,
      createdAt: options.createdAt ?? new Date(),
    }),
    emailRequested: createEvent('notification.email_requested', {
      deliveryId: randomUUID(),
      notificationId: id,
    }),
    defaults: defaultsFor(input.type),
    inAppLocked: isInAppLocked(input.type),
    source: options.source,
  };
}

export function createNotificationService(deps: {
  notifications: NotificationRepository;
  inboxHeads: InboxHeadCache;
  recipients: RecipientDirectory;
  relay: Pick<OutboxRelay, 'kick'>;
}): NotificationService {
  const { notifications, inboxHeads, recipients, relay } = deps;

  /** The recipient's inbox head: counts and newest notifications, cached until a change. */
  const inboxHead = (recipientId: string) =>
    inboxHeads.get(recipientId, () => notifications.inboxHead(recipientId, INBOX_HEAD_SIZE));

  /** Creates it with its events; null when nothing was (event seen before, recipient deleted). */
  async function create(
    input: NewNotification,
    source?: { consumer: string; eventId: string },
  ): Promise<Notification | null> {
    const created = await notifications.create(composeNotification(input, { source }));
    if (!created) return null;
    // The head goes before the relay is kicked to send the live push, so that a client told
    // of the notification finds it on its first page (unless the relay's own poll sent it in
    // that moment: then its next read does).
    await inboxHeads.forget(created.recipientId);
    relay.kick();
    return created;
  }

  const found = (notification: Notification | null): Notification => {
    if (!notification) throw AppError.notFound('Notification');
    return notification;
  };

  return {
    async list({ recipientId, first, after, unreadOnly, withUnreadCount }) {
      if (first < 1 || first > MAX_PAGE)
        throw AppError.badInput('first', `must be between 1 and ${MAX_PAGE}`);
      requireId('recipientId', recipientId);
      if (after === undefined && !unreadOnly) {
        // The first page of everything shown: the inbox head has it, unless it is longer than
        // the head's newest notifications (and the inbox longer still).
        const head = await inboxHead(recipientId);
        const unreadCount = withUnreadCount ? head.unread : undefined;
        if (first <= head.newest.length || head.newest.length === head.total)
          return {
            rows: head.newest.slice(0, first),
            hasNextPage: head.total > first,
            totalCount: head.total,
            unreadCount,
          };
        return { ...(await notifications.list(recipientId, { first, unreadOnly })), unreadCount };
      }
      const [page, head] = await Promise.all([
        notifications.list(recipientId, { first, after, unreadOnly }),
        withUnreadCount ? inboxHead(recipientId) : undefined,
      ]);
      return { ...page, unreadCount: head?.unread };
    },

    async countUnread(recipientId) {
      requireId('recipientId', recipientId);
      return (await inboxHead(recipientId)).unread;
    },

    async get(id, recipientId) {
      requireId('id', id);
      requireId('recipientId', recipientId);
      return found(await notifications.get(id, recipientId));
    },

    async send(input, keyed) {
      const checked = checkSent(input);
      const key = keyed?.idempotencyKey;
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
        throw AppError.badInput('idempotencyKey', 'must be 1 to 128 visible ASCII characters');
      // Keys are the sender's own: the platform's sends (no sender) take none.
      if (key !== undefined) requireId('senderId', keyed?.senderId ?? '');
      await recipients.requireExists(checked.recipientId);
      const source =
        key === undefined
          ? undefined
          : { consumer: KEYED_SEND, eventId: keyedSourceId(keyed?.senderId ?? '', key) };
      const notification = await create(checked, source);
      if (notification) return notification;
      // Nothing created: the key was used before (a retry, or two requests at once: the
      // second waited for the first to commit), or the deletion's tombstone refused it.
      if (source) {
        const earlier = await notifications.findBySource(source.eventId);
        if (earlier) {
          const same =
            earlier.recipientId === checked.recipientId &&
            earlier.type === checked.type &&
            earlier.title === checked.title &&
            earlier.body === checked.body &&
            sameData(earlier.data, checked.data);
          if (!same) throw AppError.badInput('idempotencyKey', 'was used for another notification');
          // As it was sent: whether and when the recipient read it is theirs alone.
          return { ...earlier, readAt: null };
        }
      }
      if (!source || (await notifications.isDeletedRecipient(checked.recipientId)))
        throw AppError.notFound('User');
      throw AppError.conflict(
        'This idempotencyKey was used already, by a notification that no longer exists',
      );
    },

    async markRead(id, recipientId) {
      requireId('id', id);
      requireId('recipientId', recipientId);
      // Its update commits before the notification is read back: the head goes even when that
      // read fails.
      try {
        return found(await notifications.markRead(id, recipientId));
      } finally {
        await inboxHeads.forget(recipientId);
      }
    },

    async markAllRead(recipientId) {
      requireId('recipientId', recipientId);
      const changed = await notifications.markAllRead(recipientId);
      await inboxHeads.forget(recipientId);
      return changed;
    },

    async remove(id, recipientId) {
      requireId('id', id);
      requireId('recipientId', recipientId);
      if (!(await notifications.remove(id, recipientId))) throw AppError.notFound('Notification');
      await inboxHeads.forget(recipientId);
    },

    async notify(consumer, eventId, input) {
      await create(input, { consumer, eventId });
    },

    async removeRecipient(consumer, event) {
      const { userId } = event.payload;
      // First the tombstone, committed on its own: every create that starts after this sees it
      // and creates nothing.
      await notifications.recordDeletedRecipient(userId);
      await notifications.transaction(async (tx) => {
        if (!(await tx.processOnce(consumer, event.id))) return;
        // Creates that started before the tombstone may still be running: wait for them (and
        // hold new ones back until this commits), so the deletes below see every notification
        // the user will ever have. Deletions are rare; this is brief.
        await tx.holdBackCreates();
        await tx.removeAllOf(userId);
        await tx.removePreferencesOf(userId);
      });
      await inboxHeads.forget(userId);
    },
  };
}
