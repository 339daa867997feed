import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { eventually, holdOpen } from '@platform/testing';
import { useNotificationWorld } from './testing/notification.world';

const RACES = 20;

/** The use cases that own a transaction or race one, on the real PostgreSQL. */
describe('NotificationService on PostgreSQL', () => {
  const world = useNotificationWorld();

  const note = (recipientId: string) => ({ recipientId, type: 'note', title: 'Hi', body: '' });
  const leftOf = async (recipientId: string) => ({
    notifications: await world.db.notification.count({ where: { recipientId } }),
    preferences: await world.db.notificationPreference.count({ where: { userId: recipientId } }),
  });

  it('either refuses or removes a notification sent while its recipient is being deleted', async () => {
    const outcomes = new Set<string>();
    for (let race = 0; race < RACES; race++) {
      const recipientId = randomUUID();
      world.users.add(recipientId);
      await world.service.send(note(recipientId));
      await world.db.notificationPreference.create({
        data: { userId: recipientId, type: 'note', inApp: true, email: true },
      });
      const deleted = createEvent('user.deleted', { userId: recipientId });
      const [notified, ...sent] = await Promise.allSettled([
        world.service.notify('role', randomUUID(), note(recipientId)),
        ...[1, 2, 3, 4].map(() => world.service.send(note(recipientId))),
        world.service.removeRecipient('user-deleted', deleted),
      ]);
      sent.pop();
      expect(notified.status).toBe('fulfilled');
      for (const outcome of sent) {
        if (outcome.status === 'rejected')
          expect(outcome.reason).toMatchObject({ code: 'NOT_FOUND' });
        outcomes.add(outcome.status);
      }
      expect(await leftOf(recipientId)).toEqual({ notifications: 0, preferences: 0 });
      await expect(world.service.send(note(recipientId))).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    }
    // Not asserted (timing decides), but worth seeing when a run covers only one order.
    expect(['fulfilled', 'rejected']).toEqual(expect.arrayContaining([...outcomes]));
  });

  it('removes a notification whose create began before the deletion and commits after it', async () => {
    const recipientId = randomUUID();
    const eventId = randomUUID();
    // Another delivery of the same event holds its processed-events row uncommitted: the
    // create below stops there, after its statement began, until that delivery rolls back.
    const otherDelivery = await holdOpen((hold) =>
      world.db
        .$transaction(async (tx) => {
          await tx.$executeRaw`INSERT INTO "notifications"."processed_events" (consumer, event_id)
            VALUES ('role', ${eventId}::uuid)`;
          await hold();
          throw new Error('rolled back');
        })
        .catch(() => undefined),
    );
    const created = world.service.notify('role', eventId, note(recipientId));
    await eventually(async () => expect(await world.waitingForLocks()).toBe(1));

    let removed = false;
    const removal = world.service
      .removeRecipient('user-deleted', createEvent('user.deleted', { userId: recipientId }))
      .then(() => void (removed = true));
    // The removal either waits for the create (two sessions waiting) or, were it not to, ends.
    await eventually(async () =>
      expect(removed || (await world.waitingForLocks()) === 2).toBe(true),
    );
    await Promise.all([otherDelivery.release(), created, removal]);
    expect(await leftOf(recipientId)).toEqual({ notifications: 0, preferences: 0 });
  });

  it('handles one user.deleted delivered twice at once without an error', async () => {
    for (let race = 0; race < 5; race++) {
      const userId = randomUUID();
      await world.service.notify('welcome', randomUUID(), note(userId));
      const deleted = createEvent('user.deleted', { userId });
      await Promise.all([1, 2].map(() => world.service.removeRecipient('user-deleted', deleted)));
      expect(await leftOf(userId)).toEqual({ notifications: 0, preferences: 0 });
    }
  });

  it('creates what an event calls for once when it is delivered twice at once', async () => {
    for (let race = 0; race < 5; race++) {
      const userId = randomUUID();
      const eventId = randomUUID();
      await Promise.all([1, 2].map(() => world.service.notify('welcome', eventId, note(userId))));
      expect(await world.service.countUnread(userId)).toBe(1);
    }
  });

  it('answers a repeat with the same data, however its keys are ordered, and refuses other data for the key', async () => {
    const userId = randomUUID();
    world.users.add(userId);
    const sender = { senderId: randomUUID(), idempotencyKey: randomUUID() };
    const data = { order: { id: 42, lines: [1, 2] }, shipped: true, note: null };
    const first = await world.service.send({ ...note(userId), data }, sender);
    // PostgreSQL's jsonb stores the keys in an order of its own.
    const reordered = { shipped: true, note: null, order: { lines: [1, 2], id: 42 } };
    expect((await world.service.send({ ...note(userId), data: reordered }, sender)).id).toBe(
      first.id,
    );
    for (const other of [
      { ...data, shipped: false },
      { ...data, order: { id: 42, lines: [2, 1] } },
      undefined,
    ])
      await expect(
        world.service.send({ ...note(userId), data: other }, sender),
      ).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'idempotencyKey',
      });
    expect(await world.db.notification.count({ where: { recipientId: userId } })).toBe(1);
  });

  it('leaves a key refused for a deleted recipient unused: it sends to another recipient later', async () => {
    const [gone, other] = [randomUUID(), randomUUID()];
    world.users.add(gone);
    world.users.add(other);
    const sender = { senderId: randomUUID(), idempotencyKey: randomUUID() };
    await world.db.deletedRecipient.create({ data: { userId: gone } });
    await expect(world.service.send(note(gone), sender)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const sent = await world.service.send(note(other), sender);
    expect(sent.recipientId).toBe(other);
    expect((await world.service.send(note(other), sender)).id).toBe(sent.id);
  });

  it('creates one notification for a key sent many times at once, and answers every request with it', async () => {
    for (let race = 0; race < 5; race++) {
      const userId = randomUUID();
      world.users.add(userId);
      const sender = { senderId: randomUUID(), idempotencyKey: randomUUID() };
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => world.service.send(note(userId), sender)),
      );
      expect(new Set(answers.map((answer) => answer.id)).size).toBe(1);
      expect(await world.db.notification.count({ where: { recipientId: userId } })).toBe(1);
    }
  });
});
