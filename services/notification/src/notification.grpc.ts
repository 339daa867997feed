import type { EmailDelivery, Notification, Prisma } from '@platform/db';
import { AppError } from '@platform/errors';
import type { UnaryHandlers } from '@platform/grpc';
import { notificationV1 } from '@platform/proto';
import { decodeCursor, encodeCursor, isUuid, requireId } from '@platform/validation';
import type { NotificationRepository } from './notification.repository';
import { isInAppLocked, NOTIFICATION_TYPE } from './notification.types';
import type { UnreadCountCache } from './unread-count.cache';
import type { RecipientDirectory } from './recipient.directory';

const MAX_PAGE = 100;
const MAX_TITLE = 200;
const MAX_BODY = 5_000;
const MAX_DATA_BYTES = 16 * 1024;
const MAX_PREFERENCE_CHANGES = 50;

function requireType(type: string): string {
  if (!NOTIFICATION_TYPE.test(type))
    throw AppError.badInput(
      'type',
      'must be a slug: a lowercase letter, then up to 49 of a-z 0-9 _ . -',
    );
  return type;
}

function parseData(json: string): Prisma.InputJsonValue | undefined {
  if (!json) return undefined;
  if (Buffer.byteLength(json) > MAX_DATA_BYTES)
    throw AppError.badInput('data', 'must be at most 16 KB of JSON');
  try {
    return JSON.parse(json) as Prisma.InputJsonValue;
  } catch {
    throw AppError.badInput('data', 'must be JSON');
  }
}

function toProto(notification: Notification): notificationV1.Notification {
  return {
    id: notification.id,
    recipientId: notification.recipientId,
    type: notification.type,
    title: notification.title,
    body: notification.body,
    dataJson: notification.data === null ? '' : JSON.stringify(notification.data),
    readAt: notification.readAt ?? undefined,
    createdAt: notification.createdAt,
  };
}

const DELIVERY_STATUS = {
  PENDING: notificationV1.DeliveryStatus.DELIVERY_STATUS_PENDING,
  SENT: notificationV1.DeliveryStatus.DELIVERY_STATUS_SENT,
  FAILED: notificationV1.DeliveryStatus.DELIVERY_STATUS_FAILED,
} as const;

function toDeliveryProto(delivery: EmailDelivery): notificationV1.EmailDelivery {
  return {
    id: delivery.id,
    notificationId: delivery.notificationId,
    status: DELIVERY_STATUS[delivery.status],
    attempts: delivery.attempts,
    lastError: delivery.lastError ?? '',
    updatedAt: delivery.updatedAt,
  };
}

export function createNotificationHandlers(deps: {
  notifications: NotificationRepository;
  unreadCounts: UnreadCountCache;
  recipients: RecipientDirectory;
}): UnaryHandlers<typeof notificationV1.NotificationServiceService> {
  const { notifications, unreadCounts, recipients } = deps;

  async function requireOwn(notification: Notification | null): Promise<Notification> {
    if (!notification) throw AppError.notFound('Notification');
    return notification;
  }

  return {
    async listNotifications(request) {
      const first = request.first || 20;
      if (first < 1 || first > MAX_PAGE)
        throw AppError.badInput('first', `must be between 1 and ${MAX_PAGE}`);
      const page = await notifications.list(requireId('recipientId', request.recipientId), {
        first,
        after: request.after ? decodeCursor(request.after) : undefined,
        unreadOnly: request.unreadOnly,
      });
      const last = page.notifications.at(-1);
      return {
        notifications: page.notifications.map(toProto),
        hasNextPage: page.hasNextPage,
        endCursor: last ? encodeCursor(last) : '',
        totalCount: page.totalCount,
        cursors: page.notifications.map(encodeCursor),
      };
    },

    async countUnread(request) {
      const recipientId = requireId('recipientId', request.recipientId);
      const count = await unreadCounts.get(recipientId, () =>
        notifications.countUnread(recipientId),
      );
      return { count };
    },

    async getNotification(request) {
      const id = requireId('id', request.id);
      const recipientId = requireId('recipientId', request.recipientId);
      return { notification: toProto(await requireOwn(await notifications.get(id, recipientId))) };
    },

    async sendNotification(request) {
      const recipientId = requireId('userId', request.recipientId);
      const type = requireType(request.type);
      const title = request.title.trim();
      if (title.length < 1 || title.length > MAX_TITLE)
        throw AppError.badInput('title', `must be 1 to ${MAX_TITLE} characters`);
      if (request.body.length > MAX_BODY)
        throw AppError.badInput('body', `must be at most ${MAX_BODY} characters`);
      const data = parseData(request.dataJson);
      await recipients.requireExists(recipientId);
      const notification = await notifications.create({
        recipientId,
        type,
        title,
        body: request.body,
        data,
      });
      if (!notification) throw AppError.notFound('User'); // deleted after it was looked up
      await unreadCounts.forget(recipientId);
      return { notification: toProto(notification) };
    },

    async markRead(request) {
      const id = requireId('id', request.id);
      const recipientId = requireId('recipientId', request.recipientId);
      const notification = await requireOwn(await notifications.markRead(id, recipientId));
      await unreadCounts.forget(recipientId);
      return { notification: toProto(notification) };
    },

    async markAllRead(request) {
      const recipientId = requireId('recipientId', request.recipientId);
      const changed = await notifications.markAllRead(recipientId);
      await unreadCounts.forget(recipientId);
      return { changed };
    },

    async deleteNotification(request) {
      const id = requireId('id', request.id);
      const recipientId = requireId('recipientId', request.recipientId);
      if (!(await notifications.remove(id, recipientId))) throw AppError.notFound('Notification');
      await unreadCounts.forget(recipientId);
      return {};
    },

    async getPreferences(request) {
      return { preferences: await notifications.preferences(requireId('userId', request.userId)) };
    },

    async updatePreferences(request) {
      const userId = requireId('userId', request.userId);
      if (request.changes.length > MAX_PREFERENCE_CHANGES)
        throw AppError.badInput('input', `at most ${MAX_PREFERENCE_CHANGES} at once`);
      for (const change of request.changes) {
        requireType(change.type);
        if (change.inApp === false && isInAppLocked(change.type))
          throw AppError.badInput(
            'inApp',
            `"${change.type}" notices cannot be switched off in-app`,
          );
      }
      return { preferences: await notifications.updatePreferences(userId, request.changes) };
    },

    async listEmailDeliveries(request) {
      if (request.notificationIds.length > MAX_PAGE)
        throw AppError.badInput('notificationIds', `at most ${MAX_PAGE} per call`);
      const ids = request.notificationIds.filter((id) => isUuid(id));
      return { deliveries: (await notifications.deliveries(ids)).map(toDeliveryProto) };
    },
  };
}
