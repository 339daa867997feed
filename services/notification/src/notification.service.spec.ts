import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { createNotificationService, type NewNotification } from './notification.service';
import {
  createFakeNotificationRepository,
  createFakeRecipientDirectory,
  createFakeInboxHeadCache,
  type FakeNotificationRepository,
} from './testing/notification.fakes';

const alice = randomUUID();
const bob = randomUUID();

/** The use cases on in-memory repositories, with alice and bob known to the user service. */
function setUp() {
  const repository = createFakeNotificationRepository();
  const relay = { kicks: 0, kick: () => void relay.kicks++ };
  const service = createNotificationService({
    notifications: repository,
    inboxHeads: createFakeInboxHeadCache(),
    recipients: createFakeRecipientDirectory(new Set([alice, bob])),
    relay,
  });
  return { repository, relay, service };
}

describe('NotificationService', () => {
  let repository: FakeNotificationRepository;
  let relay: { kicks: number };
  let service: ReturnType<typeof createNotificationService>;

  beforeEach(() => ({ repository, relay, service } = setUp()));

  const note = (change: Partial<NewNotification> = {}): NewNotification => ({
    recipientId: alice,
    type: 'note',
    title: 'Hello',
    body: 'Body',
    ...change,
  });

  describe('send', () => {
    it('refuses bad input with BAD_USER_INPUT naming the field', async () => {
      const cases: [Partial<NewNotification>, RegExp][] = [
        [{ recipientId: 'nobody' }, /^userId:/],
        [{ type: 'Not A Slug' }, /^type:/],
        [{ type: 'x'.repeat(51) }, /^type:/],
        [{ title: '   ' }, /^title:/],
        [{ title: 't'.repeat(201) }, /^title:/],
        [{ body: 'b'.repeat(5_001) }, /^body:/],
        [{ data: { blob: 'd'.repeat(16 * 1024) } }, /^data:/],
      ];
      for (const [change, message] of cases)
        await expect(service.send(note(change))).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          message: expect.stringMatching(message) as unknown,
        });
      expect(repository.notifications).toEqual([]);
    });

    it('refuses the platform’s own notice types, and any that pass for one, creating nothing', async () => {
      const reserved = [
        // The platform's own.
        'security',
        'security.mfa',
        'welcome',
        'role_changed',
        // One of them, a separator, anything.
        'security.password',
        'security.mfa.reset',
        'security_alert',
        'security-alert',
        'security:password',
        'security/password',
        'security.',
        'welcome.foo',
        'welcome-back',
        'welcome_pack',
        'role_changed.admin',
        // In another case.
        'Security',
        'SECURITY.password',
        'Welcome',
        'WELCOME-back',
        'Role_Changed',
      ];
      for (const type of reserved)
        await expect(service.send(note({ type })), type).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          message: 'type: is reserved for notices the platform sends itself',
        });
      expect(repository.notifications).toEqual([]);
      expect(repository.events).toEqual([]);
    });

    it('sends custom types, also ones that only begin or end like a platform type', async () => {
      const custom = [
        'note',
        'invoice.paid',
        'securityx',
        'security2',
        'welcomed',
        'welcomes.new',
        'role',
        'role_change',
        'insecurity',
        'my.security',
        'account.welcome',
        'x-role_changed',
      ];
      for (const type of custom) expect((await service.send(note({ type }))).type, type).toBe(type);
      expect(repository.notifications.map((sent) => sent.type)).toEqual(custom);
    });

    it('trims the title, keeps the data as sent and pushes the notification live', async () => {
      const data = { invoice: 42, lines: [1, 2], none: null };
      const sent = await service.send(note({ title: '  Paid  ', data }));
      expect(sent).toMatchObject({ recipientId: alice, title: 'Paid', data, readAt: null });
      expect(repository.events).toEqual([
        expect.objectContaining({
          type: 'notification.created',
          payload: {
            id: sent.id,
            recipientId: alice,
            type: 'note',
            title: 'Paid',
            body: 'Body',
            data,
            createdAt: sent.createdAt,
          },
        }),
      ]);
      expect(relay.kicks).toBe(1);
    });

    it('refuses a user the user service does not know, creating nothing', async () => {
      await expect(service.send(note({ recipientId: randomUUID() }))).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(repository.notifications).toEqual([]);
    });

    it('refuses a recipient deleted after the lookup', async () => {
      await repository.recordDeletedRecipient(alice);
      await expect(service.send(note())).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: 'User not found',
      });
    });

    it('creates one notification per idempotency key of a sender, answering repeats with it', async () => {
      const sender = { senderId: bob, idempotencyKey: 'order-42/shipped' };
      const first = { ...(await service.send(note(), sender)) };
      await service.markRead(first.id, alice);
      const again = await service.send(note(), sender);
      // As it was sent: the sender does not learn that alice read it.
      expect(again).toEqual(first);
      expect(repository.notifications).toHaveLength(1);
      await expect(
        service.send(note(), { senderId: '', idempotencyKey: 'platform' }),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'senderId' });
      // Another sender's key of the same text is theirs alone; no key is no deduplication.
      await service.send(note(), { senderId: randomUUID(), idempotencyKey: sender.idempotencyKey });
      await service.send(note(), { senderId: bob });
      await service.send(note(), { senderId: bob });
      expect(repository.notifications).toHaveLength(4);
    });

    it('refuses a key used for another notification, or one that is not 1 to 128 visible ASCII characters', async () => {
      const sender = { senderId: bob, idempotencyKey: 'k1' };
      await service.send(note(), sender);
      for (const other of [
        note({ title: 'Other' }),
        note({ recipientId: bob }),
        note({ data: { order: 42 } }),
      ])
        await expect(service.send(other, sender)).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'idempotencyKey',
        });
      for (const idempotencyKey of ['', 'x'.repeat(129), 'has space', 'tab\t', 'é'])
        await expect(service.send(note(), { senderId: bob, idempotencyKey })).rejects.toMatchObject(
          {
            code: 'BAD_USER_INPUT',
            field: 'idempotencyKey',
          },
        );
      expect(repository.notifications).toHaveLength(1);
    });

    it('answers a repeat whose notification was deleted since with CONFLICT, and a deleted recipient with NOT_FOUND', async () => {
      const sender = { senderId: bob, idempotencyKey: 'k2' };
      const first = await service.send(note(), sender);
      await service.remove(first.id, alice);
      await expect(service.send(note(), sender)).rejects.toMatchObject({ code: 'CONFLICT' });
      await repository.recordDeletedRecipient(alice);
      await expect(service.send(note(), { ...sender, idempotencyKey: 'k3' })).rejects.toMatchObject(
        { code: 'NOT_FOUND' },
      );
      // A send refused so created nothing, and its key is still the sender's to use.
      const reused = await service.send(note({ recipientId: bob }), {
        ...sender,
        idempotencyKey: 'k3',
      });
      expect(reused.recipientId).toBe(bob);
    });

    it('counts the new notification in the unread count at once', async () => {
      expect(await service.countUnread(alice)).toBe(0);
      await service.send(note());
      expect(await service.countUnread(alice)).toBe(1);
    });

    it('mails a security notice by default, and a note only shows in the inbox', async () => {
      await service.notify('security-test', randomUUID(), note({ type: 'security' }));
      const security = repository.notifications.find((n) => n.type === 'security')!;
      await service.send(note({ type: 'note' }));
      expect(repository.deliveries.map((d) => d.notificationId)).toEqual([security.id]);
    });

    it('lets no caller send one of the platform’s own notice types', async () => {
      for (const type of ['security', 'welcome', 'role_changed'])
        await expect(service.send(note({ type }))).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'type',
        });
      expect(repository.notifications).toEqual([]);
    });

    it('shows a security notice even to a recipient who switched them off in-app', async () => {
      await repository.transaction((tx) =>
        tx.changePreference(
          alice,
          'security',
          { inApp: false, email: false },
          { inApp: true, email: true },
        ),
      );
      await service.notify('security-test', randomUUID(), note({ type: 'security' }));
      const security = repository.notifications.find((n) => n.type === 'security')!;
      const page = await service.list({ recipientId: alice, first: 10, unreadOnly: false });
      expect(page.rows.map((n) => n.id)).toEqual([security.id]);
      expect(repository.deliveries).toEqual([]);
    });
  });

  describe('notify', () => {
    it('creates one notification per event however often the event arrives', async () => {
      const event = createEvent('user.registered', {
        userId: alice,
        email: 'a@example.com',
        displayName: 'A',
      });
      await service.notify('welcome', event.id, note({ type: 'welcome' }));
      expect(await service.countUnread(alice)).toBe(1);
      await service.notify('welcome', event.id, note({ type: 'welcome' }));
      expect(repository.notifications).toHaveLength(1);
      expect(relay.kicks).toBe(1);
    });
  });

  describe('reading and removing', () => {
    it("treats someone else's notification as not found, and leaves it alone", async () => {
      const { id } = await service.send(note({ recipientId: alice }));
      await expect(service.get(id, bob)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(service.markRead(id, bob)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(service.remove(id, bob)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await service.markAllRead(bob)).toBe(0);
      expect(await service.get(id, alice)).toMatchObject({ id, readAt: null });
    });

    it('keeps the unread count right through read, read-all and delete', async () => {
      const first = await service.send(note());
      const second = await service.send(note());
      await service.send(note());
      expect(await service.countUnread(alice)).toBe(3);
      const read = await service.markRead(first.id, alice);
      expect(await service.countUnread(alice)).toBe(2);
      expect((await service.markRead(first.id, alice)).readAt).toEqual(read.readAt);
      await service.remove(second.id, alice);
      expect(await service.countUnread(alice)).toBe(1);
      expect(await service.markAllRead(alice)).toBe(1);
      expect(await service.countUnread(alice)).toBe(0);
    });

    it('keeps the first page right through send, read, read-all and delete, with its unread count', async () => {
      const firstPage = async (first = 2) => {
        const page = await service.list({
          recipientId: alice,
          first,
          unreadOnly: false,
          withUnreadCount: true,
        });
        return {
          ids: page.rows.map((n) => n.id),
          read: page.rows.map((n) => n.readAt !== null),
          hasNextPage: page.hasNextPage,
          totalCount: page.totalCount,
          unreadCount: page.unreadCount,
        };
      };
      expect(await firstPage()).toEqual({
        ids: [],
        read: [],
        hasNextPage: false,
        totalCount: 0,
        unreadCount: 0,
      });
      const one = await service.send(note());
      const two = await service.send(note());
      expect(await firstPage()).toMatchObject({ ids: [two.id, one.id], hasNextPage: false });
      const three = await service.send(note());
      expect(await firstPage()).toEqual({
        ids: [three.id, two.id],
        read: [false, false],
        hasNextPage: true,
        totalCount: 3,
        unreadCount: 3,
      });
      await service.markRead(two.id, alice);
      expect(await firstPage()).toMatchObject({ read: [false, true], unreadCount: 2 });
      await service.remove(three.id, alice);
      expect(await firstPage()).toMatchObject({ ids: [two.id, one.id], totalCount: 2 });
      await service.markAllRead(alice);
      expect(await firstPage()).toMatchObject({ read: [true, true], unreadCount: 0 });
      // Pages past the head, unread-only pages and later pages are the repository's.
      expect((await firstPage(100)).ids).toEqual([two.id, one.id]);
      const unreadOnly = await service.list({ recipientId: alice, first: 2, unreadOnly: true });
      expect(unreadOnly.rows).toEqual([]);
    });

    it('reads a first page longer than the cached head, of large notifications, in full', async () => {
      // About 5 KB each: the head Redis keeps stops at about 32 KB, six of them.
      const sent = [];
      for (let n = 0; n < 12; n++) sent.push(await service.send(note({ body: 'x'.repeat(5_000) })));
      const newest = sent.reverse().map((n) => n.id);
      for (let round = 0; round < 2; round++) {
        const page = await service.list({ recipientId: alice, first: 10, unreadOnly: false });
        expect(page.rows.map((n) => n.id)).toEqual(newest.slice(0, 10));
        expect(page).toMatchObject({ hasNextPage: true, totalCount: 12 });
        const small = await service.list({ recipientId: alice, first: 3, unreadOnly: false });
        expect(small.rows.map((n) => n.id)).toEqual(newest.slice(0, 3));
        expect(small.rows[0]).toEqual(sent[0]);
      }
    });

    it('drops the cached head when a read is recorded but reading it back fails', async () => {
      const { id } = await service.send(note());
      expect(await service.countUnread(alice)).toBe(1); // now cached
      const markRead = repository.markRead.bind(repository);
      repository.markRead = async (...args) => {
        await markRead(...args);
        throw new Error('connection lost after the update');
      };
      await expect(service.markRead(id, alice)).rejects.toThrow(/connection lost/);
      expect(await service.countUnread(alice)).toBe(0);
    });

    it('refuses a page size outside 1 to 100', async () => {
      for (const first of [0, 101])
        await expect(
          service.list({ recipientId: alice, first, unreadOnly: false }),
        ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: /^first:/ });
    });
  });

  describe('removeRecipient', () => {
    it('removes the user’s notifications, drops the count and refuses what is sent later', async () => {
      await service.send(note());
      expect(await service.countUnread(alice)).toBe(1);
      await service.removeRecipient('deleted', createEvent('user.deleted', { userId: alice }));
      expect(await service.countUnread(alice)).toBe(0);
      expect(repository.notifications).toEqual([]);
      await expect(service.send(note())).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await service.notify('welcome', randomUUID(), note());
      expect(repository.notifications).toEqual([]);
    });
  });
});
