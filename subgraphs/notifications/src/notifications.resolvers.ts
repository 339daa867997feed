import DataLoader from 'dataloader';
import { AppError } from '@platform/errors';
import type { GrpcClient } from '@platform/grpc';
import { PERMISSIONS } from '@platform/permissions';
import { notificationV1 } from '@platform/proto';
import {
  DateTimeScalar,
  JSONScalar,
  requireViewer,
  type SubgraphContext,
} from '@platform/subgraph';
import { requireId } from '@platform/validation';
import type { LiveHub } from './live-hub';
import { requireSendableData } from './notification-data';
import { passTraceContext } from '@platform/telemetry';

type NotificationClient = GrpcClient<typeof notificationV1.NotificationServiceService>;

export interface NotificationsContext extends SubgraphContext {
  notifications: NotificationClient;
  /** This instance's live subscribers. */
  live: LiveHub<notificationV1.Notification>;
  /** Email deliveries by notification id, one call per tick. */
  deliveries: DataLoader<string, notificationV1.EmailDelivery | null>;
  /** The recipients' pages and unread counts of this request, merged per tick. */
  inbox: Inbox;
}

interface PageArgs {
  first: number;
  after: string;
  unreadOnly: boolean;
}

/** What a page (`User.notifications`) and the badge (`unreadNotificationCount`) read. */
export interface Inbox {
  page(recipientId: string, args: PageArgs): Promise<notificationV1.ListNotificationsResponse>;
  unreadCount(recipientId: string): Promise<number>;
}

type InboxRead = { recipientId: string; page?: PageArgs };

/**
 * A page and the unread count of the same recipient asked in the same tick (a page showing both)
 * go out as one ListNotifications with its unread count; a count alone is a CountUnread.
 */
export function createInbox(client: NotificationClient): Inbox {
  const loader = new DataLoader<
    InboxRead,
    notificationV1.ListNotificationsResponse | number,
    string
  >(
    async (reads) => {
      const countWanted = new Set(reads.filter((read) => !read.page).map((r) => r.recipientId));
      const counts = new Map<string, Promise<number>>();
      const pages = reads.map((read) => {
        if (!read.page) return undefined;
        const withUnreadCount = countWanted.delete(read.recipientId);
        const page = client.listNotifications({
          recipientId: read.recipientId,
          ...read.page,
          withUnreadCount,
        });
        if (withUnreadCount)
          counts.set(
            read.recipientId,
            page.then((answer) => answer.unreadCount ?? 0),
          );
        return page;
      });
      for (const recipientId of countWanted)
        counts.set(
          recipientId,
          client.countUnread({ recipientId }).then((answer) => answer.count),
        );
      const settled = await Promise.allSettled(
        reads.map(async (read, index) => pages[index] ?? counts.get(read.recipientId) ?? 0),
      );
      return settled.map((result) =>
        result.status === 'fulfilled'
          ? result.value
          : result.reason instanceof Error
            ? result.reason
            : new Error(String(result.reason)),
      );
    },
    {
      cacheKeyFn: ({ recipientId, page }) =>
        page ? `${recipientId}|${page.first}|${page.after}|${page.unreadOnly}` : recipientId,
    },
  );
  return {
    async page(recipientId, args) {
      const answer = await loader.load({ recipientId, page: args });
      if (typeof answer === 'number') throw new Error('inbox: a count where a page was expected');
      return answer;
    },
    async unreadCount(recipientId) {
      const answer = await loader.load({ recipientId });
      if (typeof answer !== 'number') throw new Error('inbox: a page where a count was expected');
      return answer;
    },
  };
}

export function createDeliveryLoader(
  client: NotificationClient,
): NotificationsContext['deliveries'] {
  return new DataLoader(async (ids) => {
    const { deliveries } = await client.listEmailDeliveries({ notificationIds: [...ids] });
    const byNotification = new Map(deliveries.map((d) => [d.notificationId, d]));
    return ids.map((id) => byNotification.get(id) ?? null);
  });
}

/** Notifications are private: only their recipient sees them. */
function requireSelf(user: { id: string }, context: NotificationsContext): void {
  if (requireViewer(context).userId !== user.id)
    throw AppError.forbidden('Only the user can see their notifications');
}

const STATUS = {
  [notificationV1.DeliveryStatus.DELIVERY_STATUS_PENDING]: 'PENDING',
  [notificationV1.DeliveryStatus.DELIVERY_STATUS_SENT]: 'SENT',
  [notificationV1.DeliveryStatus.DELIVERY_STATUS_FAILED]: 'FAILED',
} as Record<number, string | undefined>;

interface SendInput {
  userId: string;
  type: string;
  title: string;
  body: string;
  data?: unknown;
  idempotencyKey?: string | null;
}

export const notificationsResolvers = {
  DateTime: DateTimeScalar,
  JSON: JSONScalar,
  Notification: {
    read: (notification: notificationV1.Notification) => notification.readAt !== undefined,
    recipient: (notification: notificationV1.Notification) => ({
      __typename: 'User',
      id: notification.recipientId,
    }),
    // The recipient's only: a sender must not follow whether their mail bounced (and why).
    emailDelivery: (
      notification: notificationV1.Notification,
      _: unknown,
      context: NotificationsContext,
    ) =>
      context.viewer?.userId === notification.recipientId
        ? context.deliveries.load(notification.id)
        : null,
  },
  EmailDelivery: {
    status: (delivery: notificationV1.EmailDelivery) => STATUS[delivery.status] ?? 'PENDING',
    lastError: (delivery: notificationV1.EmailDelivery) => delivery.lastError || null,
  },
  Subscription: {
    notificationAdded: {
      subscribe: (_: unknown, __: unknown, context: NotificationsContext) =>
        context.live.subscribe(requireViewer(context).userId),
      // The event's trace context goes on to the subscription's context, for `onNext`.
      resolve: (
        notification: notificationV1.Notification,
        _: unknown,
        context: NotificationsContext,
      ) => passTraceContext(notification, context),
    },
  },
  Query: {
    async notification(_: unknown, { id }: { id: string }, context: NotificationsContext) {
      const viewer = requireViewer(context);
      const { notification } = await context.notifications.getNotification({
        id: requireId('id', id, 'notification'),
        recipientId: viewer.userId,
      });
      return notification;
    },
  },
  Mutation: {
    async sendNotification(
      _: unknown,
      { input }: { input: SendInput },
      context: NotificationsContext,
    ) {
      const viewer = await context.authz.require(PERMISSIONS['notifications:send']);
      requireId('userId', input.userId, 'user');
      const { notification } = await context.notifications.sendNotification({
        senderId: viewer.userId,
        recipientId: input.userId,
        type: input.type,
        title: input.title,
        body: input.body,
        data: requireSendableData(input.data),
        idempotencyKey: input.idempotencyKey ?? undefined,
      });
      return notification;
    },
    async markNotificationRead(_: unknown, { id }: { id: string }, context: NotificationsContext) {
      const viewer = requireViewer(context);
      const { notification } = await context.notifications.markRead({
        id: requireId('id', id, 'notification'),
        recipientId: viewer.userId,
      });
      return notification;
    },
    async markAllNotificationsRead(_: unknown, __: unknown, context: NotificationsContext) {
      const viewer = requireViewer(context);
      return (await context.notifications.markAllRead({ recipientId: viewer.userId })).changed;
    },
    async deleteNotification(_: unknown, { id }: { id: string }, context: NotificationsContext) {
      const viewer = requireViewer(context);
      await context.notifications.deleteNotification({
        id: requireId('id', id, 'notification'),
        recipientId: viewer.userId,
      });
      return true;
    },
    async updateNotificationPreferences(
      _: unknown,
      { input }: { input: { type: string; inApp?: boolean | null; email?: boolean | null }[] },
      context: NotificationsContext,
    ) {
      const viewer = requireViewer(context);
      const { preferences } = await context.notifications.updatePreferences({
        userId: viewer.userId,
        changes: input.map((change) => ({
          type: change.type,
          inApp: change.inApp ?? undefined,
          email: change.email ?? undefined,
        })),
      });
      return preferences;
    },
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
      const page = await context.inbox.page(user.id, {
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
      return context.inbox.unreadCount(user.id);
    },
    async notificationPreferences(user: { id: string }, _: unknown, context: NotificationsContext) {
      requireSelf(user, context);
      return (await context.notifications.getPreferences({ userId: user.id })).preferences;
    },
  },
};
