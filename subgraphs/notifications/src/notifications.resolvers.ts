import { AppError } from '@platform/errors';
import type { GrpcClient } from '@platform/grpc';
import type { notificationV1 } from '@platform/proto';
import {
  DateTimeScalar,
  JSONScalar,
  requireViewer,
  type SubgraphContext,
} from '@platform/subgraph';

type NotificationClient = GrpcClient<typeof notificationV1.NotificationServiceService>;

export interface NotificationsContext extends SubgraphContext {
  notifications: NotificationClient;
}

/** Notifications are private: only their recipient sees them. */
function requireSelf(user: { id: string }, context: NotificationsContext): void {
  if (requireViewer(context).userId !== user.id)
    throw AppError.forbidden('Only the user can see their notifications');
}

export const notificationsResolvers = {
  DateTime: DateTimeScalar,
  JSON: JSONScalar,
  Notification: {
    read: (notification: notificationV1.Notification) => notification.readAt !== undefined,
    data: (notification: notificationV1.Notification): unknown =>
      notification.dataJson ? JSON.parse(notification.dataJson) : null,
    recipient: (notification: notificationV1.Notification) => ({
      __typename: 'User',
      id: notification.recipientId,
    }),
  },
  User: {
    async notifications(
      user: { id: string },
      args: { first: number; after?: string | null; unreadOnly: boolean },
      context: NotificationsContext,
    ) {
      requireSelf(user, context);
      if (args.first < 1 || args.first > 100)
        throw AppError.badInput('first', 'must be between 1 and 100');
      const page = await context.notifications.listNotifications({
        recipientId: user.id,
        first: args.first,
        after: args.after ?? '',
        unreadOnly: args.unreadOnly,
      });
      return {
        edges: page.notifications.map((node, index) => ({
          node,
          cursor: page.cursors[index] ?? '',
        })),
        pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor || null },
        totalCount: page.totalCount,
      };
    },
    async unreadNotificationCount(user: { id: string }, _: unknown, context: NotificationsContext) {
      requireSelf(user, context);
      return (await context.notifications.countUnread({ recipientId: user.id })).count;
    },
  },
};
