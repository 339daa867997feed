import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseEvent, type EventEnvelope } from '@platform/events';
import { newNotification } from './testing/notification.factories';
import { useNotificationWorld } from './testing/notification.world';

const RACES = 10;

describe('NotificationRepository', () => {
  const world = useNotificationWorld();

  /** A notification's events in the outbox, as a consumer reads them; by type. */
  const outboxOf = async (notificationId: string) =>
    (await world.db.notificationOutboxEvent.findMany({ orderBy: { type: 'asc' } }))
      .map((row) => parseEvent(row.envelope))
      .filter(({ payload }) =>
        [
          (payload as { id?: string }).id,
          (payload as { notificationId?: string }).notificationId,
        ].includes(notificationId),
      );

  /** An event as its consumers receive it. */
  const received = (event: EventEnvelope) => parseEvent(JSON.parse(JSON.stringify(event)));

  /** A stored notification (what its event carries). */
  const stored = async () => {
    const write = newNotification();
    await world.notifications.create(write);
    return write.created.payload;
  };

  /** Starts `call` `times` times at once. */
  const atOnce = <T>(times: number, call: () => Promise<T>) =>
    Promise.all(Array.from({ length: times }, call));

  const setPreference = (userId: string, type: string, inApp: boolean, email: boolean) =>
    world.notifications.transaction((tx) =>
      tx.changePreference(userId, type, { inApp, email }, { inApp: true, email: false }),
    );

  describe('create', () => {
    it('writes the notification and, for live push, notification.created with the same content', async () => {
      const write = newNotification({ data: { invoice: 42, lines: [1, 2] } });
      const created = await world.notifications.create(write);
      const { payload } = write.created;
      expect(created).toEqual({
        ...payload,
        readAt: null,
        sourceEventId: null,
        inApp: true,
      });
      expect(await outboxOf(payload.id)).toEqual([received(write.created)]);
      expect(await world.db.emailDelivery.count({ where: { notificationId: payload.id } })).toBe(0);
    });

    it('mails a type whose channels say so: an email delivery and notification.email_requested', async () => {
      const write = newNotification({ type: 'security' });
      await world.notifications.create(write);
      const delivery = await world.db.emailDelivery.findUniqueOrThrow({
        where: { id: write.emailRequested.payload.deliveryId },
      });
      expect(delivery).toMatchObject({
        notificationId: write.created.payload.id,
        status: 'PENDING',
      });
      expect(await outboxOf(write.created.payload.id)).toEqual([
        received(write.created),
        received(write.emailRequested),
      ]);
    });

    it('keeps a type switched off in-app without listing or pushing it, and mails it if asked', async () => {
      const write = newNotification();
      const { recipientId } = write.created.payload;
      await setPreference(recipientId, 'note', false, true);
      const created = await world.notifications.create(write);
      expect(created).toMatchObject({ inApp: false });
      expect(await outboxOf(write.created.payload.id)).toEqual([received(write.emailRequested)]);
      expect(await world.notifications.get(write.created.payload.id, recipientId)).toBeNull();
      expect((await world.notifications.inboxHead(recipientId, 20)).unread).toBe(0);
    });

    it('shows a locked type in-app whatever the stored preference says', async () => {
      const write = newNotification({ type: 'security' });
      const { recipientId } = write.created.payload;
      await setPreference(recipientId, 'security', false, false);
      expect(await world.notifications.create(write)).toMatchObject({ inApp: true });
      expect(await outboxOf(write.created.payload.id)).toEqual([received(write.created)]);
    });

    it('stores data of every JSON kind as sent, and none as null', async () => {
      for (const data of [
        { a: { b: [1, 'x', null, true] } },
        [1, 2],
        'text',
        7.5,
        false,
        undefined,
      ]) {
        const created = await world.notifications.create(newNotification({ data }));
        expect(created?.data).toEqual(data ?? null);
      }
    });

    it('writes one notification for an event however often, and however concurrently, it arrives', async () => {
      for (let race = 0; race < RACES; race++) {
        const source = { consumer: 'welcome', eventId: randomUUID() };
        const recipientId = randomUUID();
        const results = await atOnce(3, () =>
          world.notifications.create(newNotification({ recipientId, source })),
        );
        expect(results.filter((created) => created !== null)).toHaveLength(1);
        expect(await world.db.notification.count({ where: { recipientId } })).toBe(1);
        expect(
          await world.notifications.create(newNotification({ recipientId, source })),
        ).toBeNull();
      }
      expect(
        await world.db.notificationOutboxEvent.count({ where: { type: 'notification.created' } }),
      ).toBe(await world.db.notification.count({ where: { inApp: true } }));
    });

    it('writes nothing, not even its events, for a deleted recipient', async () => {
      const write = newNotification({ type: 'security' });
      await world.notifications.recordDeletedRecipient(write.created.payload.recipientId);
      expect(await world.notifications.create(write)).toBeNull();
      expect(await outboxOf(write.created.payload.id)).toEqual([]);
      expect(
        await world.db.emailDelivery.count({
          where: { id: write.emailRequested.payload.deliveryId },
        }),
      ).toBe(0);
    });
  });

  describe('list', () => {
    it('pages newest first through notifications created at one instant, skipping and repeating none', async () => {
      const recipientId = randomUUID();
      const instant = new Date('2026-01-01T00:00:00.000Z');
      const later = new Date('2026-01-02T00:00:00.000Z');
      const ids: string[] = [];
      for (const createdAt of [instant, later, instant, instant, instant, later, instant]) {
        const write = newNotification({ recipientId, createdAt });
        await world.notifications.create(write);
        ids.push(write.created.payload.id);
      }
      const expected = ids
        .map((id, index) => ({ id, at: [1, 5].includes(index) ? 1 : 0 }))
        .sort((x, y) => y.at - x.at || (x.id < y.id ? 1 : -1))
        .map(({ id }) => id);

      const page = (after?: { createdAt: Date; id: string }) =>
        world.notifications.list(recipientId, { first: 3, after, unreadOnly: false });
      const first = await page();
      const second = await page(first.rows.at(-1));
      const third = await page(second.rows.at(-1));
      expect(
        [first, second, third].map(({ hasNextPage, totalCount }) => [hasNextPage, totalCount]),
      ).toEqual([
        [true, 7],
        [true, 7],
        [false, 7],
      ]);
      expect([...first.rows, ...second.rows, ...third.rows].map((row) => row.id)).toEqual(expected);
    });

    it('counts what the filter matches on every page: unread only, the recipient’s own, in-app only', async () => {
      const recipientId = randomUUID();
      const created = [];
      for (let n = 0; n < 4; n++)
        created.push(await world.notifications.create(newNotification({ recipientId })));
      await world.notifications.create(newNotification());
      await setPreference(recipientId, 'hidden', false, false);
      await world.notifications.create(newNotification({ recipientId, type: 'hidden' }));
      await world.notifications.markRead(created[0]!.id, recipientId);

      const unread = await world.notifications.list(recipientId, { first: 2, unreadOnly: true });
      expect(unread).toMatchObject({ totalCount: 3, hasNextPage: true });
      const rest = await world.notifications.list(recipientId, {
        first: 2,
        after: unread.rows.at(-1),
        unreadOnly: true,
      });
      expect(rest).toMatchObject({ totalCount: 3, hasNextPage: false });
      expect([...unread.rows, ...rest.rows].map((row) => row.id).sort()).toEqual(
        created
          .slice(1)
          .map((row) => row!.id)
          .sort(),
      );
      expect(
        (await world.notifications.list(recipientId, { first: 10, unreadOnly: false })).totalCount,
      ).toBe(4);
      expect((await world.notifications.inboxHead(recipientId, 20)).unread).toBe(3);
    });

    it('opens the inbox with its counts and newest notifications, as the first page lists them', async () => {
      const recipientId = randomUUID();
      expect(await world.notifications.inboxHead(recipientId, 3)).toEqual({
        total: 0,
        unread: 0,
        newest: [],
      });
      const created = [];
      // A second apart, oldest first: the newest order is theirs, whatever the clock does.
      const at = (n: number) => new Date(Date.now() - (10 - n) * 1_000);
      for (let n = 0; n < 5; n++)
        created.push(
          await world.notifications.create(newNotification({ recipientId, createdAt: at(n) })),
        );
      await world.notifications.create(newNotification());
      await setPreference(recipientId, 'hidden', false, false);
      await world.notifications.create(
        newNotification({ recipientId, type: 'hidden', createdAt: at(9) }),
      );
      await world.notifications.markRead(created[1]!.id, recipientId);
      await world.notifications.markRead(created[4]!.id, recipientId);

      const head = await world.notifications.inboxHead(recipientId, 3);
      const page = await world.notifications.list(recipientId, { first: 3, unreadOnly: false });
      expect(head).toEqual({ total: 5, unread: 3, newest: page.rows });
      expect(head.newest.map((row) => row.id)).toEqual(
        created
          .slice(2)
          .reverse()
          .map((row) => row!.id),
      );
      expect((await world.notifications.inboxHead(recipientId, 20)).newest).toHaveLength(5);
    });
  });

  describe('reading and removing', () => {
    it("leaves someone else's notification alone: read, read-all and delete find nothing", async () => {
      const { id, recipientId } = await stored();
      const stranger = randomUUID();
      expect(await world.notifications.get(id, stranger)).toBeNull();
      expect(await world.notifications.markRead(id, stranger)).toBeNull();
      expect(await world.notifications.markAllRead(stranger)).toBe(0);
      expect(await world.notifications.remove(id, stranger)).toBe(false);
      expect(await world.notifications.get(id, recipientId)).toMatchObject({ id, readAt: null });
    });

    it('keeps the first read time when one notification is read several times at once', async () => {
      for (let race = 0; race < RACES; race++) {
        const { id, recipientId } = await stored();
        const reads = await atOnce(3, () => world.notifications.markRead(id, recipientId));
        const times = new Set(reads.map((read) => read?.readAt?.getTime()));
        expect(times.size).toBe(1);
        expect([...times][0]).toEqual(expect.any(Number));
      }
    });

    it('marks each unread notification read once when read-all runs twice at once', async () => {
      for (let race = 0; race < RACES; race++) {
        const recipientId = randomUUID();
        for (let n = 0; n < 5; n++)
          await world.notifications.create(newNotification({ recipientId }));
        const changed = await atOnce(2, () => world.notifications.markAllRead(recipientId));
        expect(changed[0]! + changed[1]!).toBe(5);
        expect((await world.notifications.inboxHead(recipientId, 20)).unread).toBe(0);
      }
    });

    it('deletes a notification once when two deletes race', async () => {
      for (let race = 0; race < RACES; race++) {
        const { id, recipientId } = await stored();
        const removed = await atOnce(2, () => world.notifications.remove(id, recipientId));
        expect(removed.sort()).toEqual([false, true]);
      }
    });
  });

  describe('deleted recipients', () => {
    it('records a deleted recipient once when the deletion is handled twice at once', async () => {
      for (let race = 0; race < RACES; race++) {
        const userId = randomUUID();
        await atOnce(2, () => world.notifications.recordDeletedRecipient(userId));
        expect(await world.db.deletedRecipient.count({ where: { userId } })).toBe(1);
      }
    });
  });

  describe('transaction', () => {
    it('records an event once per consumer', async () => {
      const eventId = randomUUID();
      const once = (consumer: string) =>
        world.notifications.transaction((tx) => tx.processOnce(consumer, eventId));
      expect(await once('a')).toBe(true);
      expect(await once('a')).toBe(false);
      expect(await once('b')).toBe(true);
    });

    it('removes everything of one recipient and nothing of anyone else', async () => {
      const [gone, kept] = [randomUUID(), randomUUID()];
      for (const recipientId of [gone, kept]) {
        await world.notifications.create(newNotification({ recipientId }));
        await setPreference(recipientId, 'note', true, true);
      }
      await world.notifications.transaction(async (tx) => {
        await tx.holdBackCreates();
        await tx.removeAllOf(gone);
        await tx.removePreferencesOf(gone);
      });
      expect((await world.notifications.inboxHead(gone, 20)).unread).toBe(0);
      expect(await world.notifications.preferencesOf(gone)).toEqual([]);
      expect((await world.notifications.inboxHead(kept, 20)).unread).toBe(1);
      expect(await world.notifications.preferencesOf(kept)).toHaveLength(1);
    });

    it('writes nothing of a transaction that fails', async () => {
      const userId = randomUUID();
      await expect(
        world.notifications.transaction(async (tx) => {
          await tx.changePreference(userId, 'note', { email: true }, { inApp: true, email: false });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await world.notifications.preferencesOf(userId)).toEqual([]);
    });

    it('sets only the channels a preference change gives, over the defaults when none is stored', async () => {
      const userId = randomUUID();
      const change = (channels: { inApp?: boolean; email?: boolean }) =>
        world.notifications.transaction((tx) =>
          tx.changePreference(userId, 'note', channels, { inApp: true, email: false }),
        );
      await change({ email: true });
      expect(await world.notifications.preferencesOf(userId)).toMatchObject([
        { inApp: true, email: true },
      ]);
      await change({ inApp: false });
      expect(await world.notifications.preferencesOf(userId)).toMatchObject([
        { inApp: false, email: true },
      ]);
      await change({});
      expect(await world.notifications.preferencesOf(userId)).toMatchObject([
        { inApp: false, email: true },
      ]);
    });
  });
});
