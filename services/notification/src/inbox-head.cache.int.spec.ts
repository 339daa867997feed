import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createTestRun, type TestRun } from '@platform/testing';
import { createInboxHeadCache } from './inbox-head.cache';
import { createNotificationService, type NotificationService } from './notification.service';
import { createFakeRecipientDirectory } from './testing/notification.fakes';
import { useNotificationWorld } from './testing/notification.world';

const RACES = 10;

/** The use cases with their inbox heads cached in the real Redis, on the real PostgreSQL. */
describe('NotificationService with its inbox heads in Redis', () => {
  const world = useNotificationWorld();
  let run: TestRun;
  let redis: Redis;
  let service: NotificationService;
  const users = new Set<string>();

  beforeAll(async () => {
    run = await createTestRun();
    const logger = createLogger({ name: 'inbox-test', level: 'silent' });
    redis = await createRedis({ url: run.redisUrl, keyPrefix: run.redisKeyPrefix, logger });
    service = createNotificationService({
      notifications: world.notifications,
      inboxHeads: createInboxHeadCache(redis, logger),
      recipients: createFakeRecipientDirectory(users),
      relay: { kick: () => undefined },
    });
  });
  afterAll(async () => {
    await redis?.quit();
    await run?.close();
  });

  const recipient = () => {
    const id = randomUUID();
    users.add(id);
    return id;
  };
  const note = (recipientId: string, body = '') => ({
    recipientId,
    type: 'note',
    title: 'Hi',
    body,
  });
  const firstPage = (recipientId: string, first = 5) =>
    service.list({ recipientId, first, unreadOnly: false, withUnreadCount: true });

  it('answers the first page as PostgreSQL does, after every change, twice over', async () => {
    const alice = recipient();
    const expectAsStored = async () => {
      for (let read = 0; read < 2; read++) {
        const page = await firstPage(alice);
        const stored = await world.notifications.list(alice, { first: 5, unreadOnly: false });
        const { unread } = await world.notifications.inboxHead(alice, 5);
        expect(page).toEqual({ ...stored, unreadCount: unread });
      }
    };
    await expectAsStored();
    const sent = [];
    for (let n = 0; n < 7; n++) {
      sent.push(await service.send(note(alice, `body ${n}`)));
      await expectAsStored();
    }
    await service.markRead(sent[6]!.id, alice);
    await expectAsStored();
    await service.remove(sent[5]!.id, alice);
    await expectAsStored();
    await service.markAllRead(alice);
    await expectAsStored();
    expect(await service.countUnread(alice)).toBe(0);
  });

  it('never keeps a page from before a change that raced it', async () => {
    for (let race = 0; race < RACES; race++) {
      const alice = recipient();
      const sent = await Promise.all([1, 2, 3].map(() => service.send(note(alice))));
      await Promise.all([
        ...sent.map((notification) => service.markRead(notification.id, alice)),
        firstPage(alice),
        firstPage(alice),
        service.send(note(alice)),
        firstPage(alice),
      ]);
      const page = await firstPage(alice);
      expect(page).toMatchObject({ totalCount: 4, unreadCount: 1 });
      expect(page.rows.filter((n) => n.readAt === null)).toHaveLength(1);
    }
  });

  it('reads a page the head cannot hold from PostgreSQL: large notifications, long pages', async () => {
    const alice = recipient();
    for (let n = 0; n < 12; n++) await service.send(note(alice, 'x'.repeat(5_000)));
    const stored = await world.notifications.list(alice, { first: 10, unreadOnly: false });
    for (let read = 0; read < 2; read++) {
      expect(await firstPage(alice, 10)).toEqual({ ...stored, unreadCount: 12 });
      const small = await firstPage(alice, 2);
      expect(small.rows).toEqual(stored.rows.slice(0, 2));
    }
  });

  it('forgets the unread count the version before kept, so that its instances stay right during a rollout', async () => {
    const alice = recipient();
    const { id } = await service.send(note(alice));
    const legacy = `notifications:unread:${await redis.info('server').then((info) => /^run_id:(\w+)/m.exec(info)?.[1])}:${alice}`;
    await redis.set(legacy, '1');
    await service.markRead(id, alice);
    expect(await redis.exists(legacy)).toBe(0);
  });
});
