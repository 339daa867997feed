import { describe, expect, it } from 'vitest';
import type { notificationV1 } from '@platform/proto';
import { createInbox } from './notifications.resolvers';

const [ALICE, BOB] = [
  '00000000-0000-4000-8000-000000000001',
  '00000000-0000-4000-8000-000000000002',
];
const PAGE = { first: 5, after: '', unreadOnly: false };

/** The notification service as the inbox sees it: Alice has 2 unread, Bob 7; calls recorded. */
function fakeNotificationService() {
  const unread: Record<string, number> = { [ALICE]: 2, [BOB]: 7 };
  const calls: string[] = [];
  const client = {
    async listNotifications(
      request: notificationV1.ListNotificationsRequest,
    ): Promise<notificationV1.ListNotificationsResponse> {
      calls.push(`list ${request.recipientId}${request.withUnreadCount ? ' +count' : ''}`);
      return {
        notifications: [],
        hasNextPage: false,
        endCursor: '',
        totalCount: 20,
        cursors: [],
        unreadCount: request.withUnreadCount ? unread[request.recipientId] : undefined,
      };
    },
    async countUnread(request: notificationV1.CountUnreadRequest) {
      calls.push(`count ${request.recipientId}`);
      return { count: unread[request.recipientId] ?? 0 };
    },
  };
  return { client: client as unknown as Parameters<typeof createInbox>[0], calls };
}

describe('createInbox', () => {
  it('answers a page and the unread count of one recipient asked together with one call', async () => {
    const { client, calls } = fakeNotificationService();
    const inbox = createInbox(client);
    const [page, count] = await Promise.all([inbox.page(ALICE, PAGE), inbox.unreadCount(ALICE)]);
    expect(page.totalCount).toBe(20);
    expect(count).toBe(2);
    expect(calls).toEqual([`list ${ALICE} +count`]);
  });

  it('answers each recipient their own count, a count alone with CountUnread', async () => {
    const { client, calls } = fakeNotificationService();
    const inbox = createInbox(client);
    const answers = await Promise.all([
      inbox.unreadCount(BOB),
      inbox.page(ALICE, PAGE),
      inbox.unreadCount(ALICE),
    ]);
    expect(answers.map((answer) => (typeof answer === 'number' ? answer : 'page'))).toEqual([
      7,
      'page',
      2,
    ]);
    expect(calls.sort()).toEqual([`count ${BOB}`, `list ${ALICE} +count`]);
  });

  it('passes a failure on to the reads that depend on it', async () => {
    const { client } = fakeNotificationService();
    const failing = Object.assign(Object.create(client) as typeof client, {
      listNotifications: () => Promise.reject(new Error('unavailable')),
    });
    const inbox = createInbox(failing);
    const [page, count] = await Promise.allSettled([
      inbox.page(ALICE, PAGE),
      inbox.unreadCount(ALICE),
    ]);
    expect([page.status, count.status]).toEqual(['rejected', 'rejected']);
  });
});
