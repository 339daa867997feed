// Test-only: in-memory stand-ins for the repositories and caches, for unit tests of the use
// cases. They keep what the real ones keep, so a test asserts what a user would notice.
import { randomUUID } from 'node:crypto';
import type { EmailDelivery, Notification, NotificationPreference } from '@platform/db';
import { AppError } from '@platform/errors';
import type { EventEnvelope } from '@platform/events';
import type { EmailDeliveryRepository } from '../email-delivery.repository';
import type { NotificationRepository, NotificationTransaction } from '../notification.repository';
import type { RecipientDirectory } from '../recipient.directory';
import { decodeInboxHead, encodeInboxHead, type InboxHeadCache } from '../inbox-head.cache';

export interface FakeNotificationRepository extends NotificationRepository {
  readonly notifications: Notification[];
  /** The outbox, in order. */
  readonly events: EventEnvelope[];
  readonly deliveries: EmailDelivery[];
}

export function createFakeNotificationRepository(): FakeNotificationRepository {
  const notifications: Notification[] = [];
  const events: EventEnvelope[] = [];
  const deliveries: EmailDelivery[] = [];
  const preferences = new Map<string, NotificationPreference>();
  const processed = new Set<string>();
  const deleted = new Set<string>();
  const key = (userId: string, type: string) => `${userId}/${type}`;
  const own = (id: string, recipientId: string) =>
    notifications.find((n) => n.id === id && n.recipientId === recipientId && n.inApp) ?? null;
  const shown = (recipientId: string) =>
    notifications.filter((n) => n.recipientId === recipientId && n.inApp);

  const tx: NotificationTransaction = {
    async processOnce(consumer, eventId) {
      if (processed.has(`${consumer}/${eventId}`)) return false;
      processed.add(`${consumer}/${eventId}`);
      return true;
    },
    async holdBackCreates() {},
    async removeAllOf(recipientId) {
      for (let i = notifications.length - 1; i >= 0; i--)
        if (notifications[i]?.recipientId === recipientId) notifications.splice(i, 1);
    },
    async changePreference(userId, type, change, defaults) {
      const stored = preferences.get(key(userId, type)) ?? { ...defaults, userId, type };
      preferences.set(key(userId, type), {
        ...stored,
        inApp: change.inApp ?? stored.inApp,
        email: change.email ?? stored.email,
        updatedAt: new Date(),
      });
    },
    async removePreferencesOf(userId) {
      for (const [k, stored] of preferences) if (stored.userId === userId) preferences.delete(k);
    },
    async lockPreferencesOf() {},
    async preferenceTypesOf(userId) {
      return [...preferences.values()]
        .filter((stored) => stored.userId === userId)
        .map((stored) => stored.type);
    },
  };

  return {
    notifications,
    events,
    deliveries,
    async create({ created, emailRequested, defaults, inAppLocked, source }) {
      const { payload } = created;
      if (deleted.has(payload.recipientId)) return null;
      if (source && !(await tx.processOnce(source.consumer, source.eventId))) return null;
      const stored = preferences.get(key(payload.recipientId, payload.type));
      const inApp = (stored?.inApp ?? defaults.inApp) || inAppLocked;
      const notification: Notification = {
        ...payload,
        data: payload.data ?? null,
        readAt: null,
        sourceEventId: source?.eventId ?? null,
        inApp,
      };
      notifications.push(notification);
      if (inApp) events.push(created);
      if (stored?.email ?? defaults.email) {
        const now = new Date();
        deliveries.push({
          id: emailRequested.payload.deliveryId,
          notificationId: payload.id,
          status: 'PENDING',
          attempts: 0,
          lastError: null,
          createdAt: now,
          updatedAt: now,
        });
        events.push(emailRequested);
      }
      return notification;
    },
    async list(recipientId, { first, unreadOnly }) {
      const rows = shown(recipientId)
        .filter((n) => !unreadOnly || n.readAt === null)
        .toReversed();
      return {
        rows: rows.slice(0, first),
        hasNextPage: rows.length > first,
        totalCount: rows.length,
      };
    },
    async inboxHead(recipientId, size) {
      const rows = shown(recipientId).toReversed();
      return {
        total: rows.length,
        unread: rows.filter((n) => n.readAt === null).length,
        newest: rows.slice(0, size).map((n) => structuredClone(n)),
      };
    },
    async get(id, recipientId) {
      return own(id, recipientId);
    },
    async markRead(id, recipientId) {
      const notification = own(id, recipientId);
      if (notification) notification.readAt ??= new Date();
      return notification;
    },
    async markAllRead(recipientId) {
      const unread = shown(recipientId).filter((n) => n.readAt === null);
      for (const notification of unread) notification.readAt = new Date();
      return unread.length;
    },
    async remove(id, recipientId) {
      const notification = own(id, recipientId);
      if (notification) notifications.splice(notifications.indexOf(notification), 1);
      return notification !== null;
    },
    async recordDeletedRecipient(userId) {
      deleted.add(userId);
    },
    async isDeletedRecipient(userId) {
      return deleted.has(userId);
    },
    async findBySource(sourceEventId) {
      return notifications.find((n) => n.sourceEventId === sourceEventId) ?? null;
    },
    async preferencesOf(userId) {
      return [...preferences.values()].filter((stored) => stored.userId === userId);
    },
    transaction: (work) => work(tx),
  };
}

/**
 * An inbox-head cache that keeps heads until they are forgotten, stored as Redis stores them
 * (encoded: a head read later is a copy, and large heads keep fewer notifications).
 */
export function createFakeInboxHeadCache(): InboxHeadCache {
  const heads = new Map<string, string>();
  return {
    async get(recipientId, load) {
      const cached = heads.get(recipientId);
      if (cached !== undefined) return decodeInboxHead(cached);
      const head = await load();
      heads.set(recipientId, encodeInboxHead(head));
      return head;
    },
    async forget(recipientId) {
      heads.delete(recipientId);
    },
  };
}

/** The users the user service knows (the set may grow). */
export function createFakeRecipientDirectory(known: ReadonlySet<string>): RecipientDirectory {
  return {
    async requireExists(userId) {
      if (!known.has(userId)) throw AppError.notFound('User');
    },
  };
}

/** Deliveries with what they mail, as the notifications table holds it. */
export function createFakeEmailDeliveryRepository(
  mails: Record<string, { recipientId: string; title: string; body: string }>,
): EmailDeliveryRepository & { readonly deliveries: Map<string, EmailDelivery> } {
  const deliveries = new Map<string, EmailDelivery>();
  for (const notificationId of Object.keys(mails)) {
    const now = new Date();
    const id = randomUUID();
    deliveries.set(id, {
      id,
      notificationId,
      status: 'PENDING',
      attempts: 0,
      lastError: null,
      createdAt: now,
      updatedAt: now,
    });
  }
  return {
    deliveries,
    async listFor(notificationIds) {
      return [...deliveries.values()].filter((d) => notificationIds.includes(d.notificationId));
    },
    async find(deliveryId) {
      const delivery = deliveries.get(deliveryId);
      const notification = delivery && mails[delivery.notificationId];
      return delivery && notification ? { ...delivery, notification } : null;
    },
    async record(deliveryId, outcome) {
      const delivery = deliveries.get(deliveryId);
      if (!delivery) throw new Error(`no delivery ${deliveryId}`);
      deliveries.set(deliveryId, { ...delivery, ...outcome, updatedAt: new Date() });
    },
  };
}
