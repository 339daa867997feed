import { randomUUID } from 'node:crypto';
import type { Notification } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent, type EventEnvelope } from '@platform/events';
import type { OutboxRelay } from '@platform/outbox';
import { requireId, type CursorPosition, type KeysetPage } from '@platform/validation';
import type { NotificationRepository, NotificationWrite } from './notification.repository';
import { defaultsFor, isInAppLocked, isReservedType, requireType } from './notification.types';
import type { RecipientDirectory } from './recipient.directory';
import type { UnreadCountCache } from './unread-count.cache';

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
  /** The recipient's notifications shown in-app, newest first. */
  list(query: {
    recipientId: string;
    first: number;
    after?: CursorPosition | undefined;
    unreadOnly: boolean;
  }): Promise<KeysetPage<Notification>>;
  countUnread(recipientId: string): Promise<number>;
  /** NOT_FOUND unless it is the recipient's own. */
  get(id: string, recipientId: string): Promise<Notification>;
  /**
   * Sends a notification (after checking the input) to a user who must exist: NOT_FOUND for
   * an unknown or deleted recipient.
   */
  send(input: NewNotification): Promise<Notification>;
  markRead(id: string, recipientId: string): Promise<Notification>;
  /** How many changed. */
  markAllRead(recipientId: string): Promise<number>;
  remove(id: string, recipientId: string): Promise<void>;
  /** The notification an event calls for, created once per (consumer, event). */
  notify(consumer: string, eventId: string, input: NewNotification): Promise<void>;
  /** A deleted user's notifications and preferences go with them (once per event). */
  removeRecipient(consumer: string, event: EventEnvelope<'user.deleted'>): Promise<void>;
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
  unreadCounts: UnreadCountCache;
  recipients: RecipientDirectory;
  relay: Pick<OutboxRelay, 'kick'>;
}): NotificationService {
  const { notifications, unreadCounts, recipients, relay } = deps;

  /** Creates it with its events; null when nothing was (event seen before, recipient deleted). */
  async function create(
    input: NewNotification,
    source?: { consumer: string; eventId: string },
  ): Promise<Notification | null> {
    const created = await notifications.create(composeNotification(input, { source }));
    if (!created) return null;
    relay.kick();
    await unreadCounts.forget(created.recipientId);
    return created;
  }

  const found = (notification: Notification | null): Notification => {
    if (!notification) throw AppError.notFound('Notification');
    return notification;
  };

  return {
    async list({ recipientId, first, after, unreadOnly }) {
      if (first < 1 || first > MAX_PAGE)
        throw AppError.badInput('first', `must be between 1 and ${MAX_PAGE}`);
      return notifications.list(requireId('recipientId', recipientId), {
        first,
        after,
        unreadOnly,
      });
    },

    async countUnread(recipientId) {
      requireId('recipientId', recipientId);
      return unreadCounts.get(recipientId, () => notifications.countUnread(recipientId));
    },

    async get(id, recipientId) {
      requireId('id', id);
      requireId('recipientId', recipientId);
      return found(await notifications.get(id, recipientId));
    },

    async send(input) {
      const checked = checkSent(input);
      await recipients.requireExists(checked.recipientId);
      const notification = await create(checked);
      // Deleted after it was looked up: the deletion's tombstone refused it.
      if (!notification) throw AppError.notFound('User');
      return notification;
    },

    async markRead(id, recipientId) {
      requireId('id', id);
      requireId('recipientId', recipientId);
      const notification = found(await notifications.markRead(id, recipientId));
      await unreadCounts.forget(recipientId);
      return notification;
    },

    async markAllRead(recipientId) {
      requireId('recipientId', recipientId);
      const changed = await notifications.markAllRead(recipientId);
      await unreadCounts.forget(recipientId);
      return changed;
    },

    async remove(id, recipientId) {
      requireId('id', id);
      requireId('recipientId', recipientId);
      if (!(await notifications.remove(id, recipientId))) throw AppError.notFound('Notification');
      await unreadCounts.forget(recipientId);
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
      await unreadCounts.forget(userId);
    },
  };
}
