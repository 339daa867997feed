import type { EmailDelivery, Notification } from '@platform/db';
import type { UnaryHandlers } from '@platform/grpc';
import { notificationV1 } from '@platform/proto';
import { decodeCursor, encodeCursor } from '@platform/validation';
import type { EmailDeliveryService } from './email-delivery.service';
import type { NotificationService } from './notification.service';
import type { PreferenceService } from './preference.service';

const DEFAULT_PAGE = 20;

function toProto(notification: Notification): notificationV1.Notification {
  return {
    id: notification.id,
    recipientId: notification.recipientId,
    type: notification.type,
    title: notification.title,
    body: notification.body,
    data: notification.data ?? undefined,
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

/** gRPC <-> use cases: proto in, domain out and back; the rules live in the services. */
export function createNotificationHandlers(deps: {
  notifications: NotificationService;
  preferences: PreferenceService;
  deliveries: EmailDeliveryService;
}): UnaryHandlers<typeof notificationV1.NotificationServiceService> {
  const { notifications, preferences, deliveries } = deps;

  return {
    async listNotifications(request) {
      const page = await notifications.list({
        recipientId: request.recipientId,
        first: request.first || DEFAULT_PAGE,
        after: request.after ? decodeCursor(request.after) : undefined,
        unreadOnly: request.unreadOnly,
        withUnreadCount: request.withUnreadCount,
      });
      const last = page.rows.at(-1);
      return {
        unreadCount: page.unreadCount,
        notifications: page.rows.map(toProto),
        hasNextPage: page.hasNextPage,
        endCursor: last ? encodeCursor(last) : '',
        totalCount: page.totalCount,
        cursors: page.rows.map(encodeCursor),
      };
    },

    async countUnread(request) {
      return { count: await notifications.countUnread(request.recipientId) };
    },

    async getNotification(request) {
      return {
        notification: toProto(await notifications.get(request.id, request.recipientId)),
      };
    },

    async sendNotification(request) {
      const notification = await notifications.send(
        {
          recipientId: request.recipientId,
          type: request.type,
          title: request.title,
          body: request.body,
          data: request.data ?? undefined,
        },
        { senderId: request.senderId, idempotencyKey: request.idempotencyKey },
      );
      return { notification: toProto(notification) };
    },

    async markRead(request) {
      return {
        notification: toProto(await notifications.markRead(request.id, request.recipientId)),
      };
    },

    async markAllRead(request) {
      return { changed: await notifications.markAllRead(request.recipientId) };
    },

    async deleteNotification(request) {
      await notifications.remove(request.id, request.recipientId);
      return {};
    },

    async getPreferences(request) {
      return { preferences: await preferences.get(request.userId) };
    },

    async updatePreferences(request) {
      return { preferences: await preferences.update(request.userId, request.changes) };
    },

    async listEmailDeliveries(request) {
      return {
        deliveries: (await deliveries.listFor(request.notificationIds)).map(toDeliveryProto),
      };
    },
  };
}
