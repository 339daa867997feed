import { decodeCursor, encodeCursor, isUuid } from '@platform/validation';
import type { Notification } from '@platform/db';
import { AppError } from '@platform/errors';
import type { UnaryHandlers } from '@platform/grpc';
import type { notificationV1 } from '@platform/proto';
import { type notificationV1 as proto } from '@platform/proto';
import type { NotificationRepository } from './notification.repository';
import type { UnreadCountCache } from './unread-count.cache';

const MAX_PAGE = 100;

function requireRecipient(id: string): string {
  if (!isUuid(id)) throw AppError.badInput('recipientId', 'must be a user id');
  return id;
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

export function createNotificationHandlers(deps: {
  notifications: NotificationRepository;
  unreadCounts: UnreadCountCache;
}): UnaryHandlers<typeof proto.NotificationServiceService> {
  const { notifications, unreadCounts } = deps;
  return {
    async listNotifications(request) {
      const first = request.first || 20;
      if (first < 1 || first > MAX_PAGE)
        throw AppError.badInput('first', `must be between 1 and ${MAX_PAGE}`);
      const page = await notifications.list(requireRecipient(request.recipientId), {
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
      const recipientId = requireRecipient(request.recipientId);
      const count = await unreadCounts.get(recipientId, () =>
        notifications.countUnread(recipientId),
      );
      return { count };
    },
  };
}
