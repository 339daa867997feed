import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newNotification } from './testing/notification.factories';
import { useNotificationWorld } from './testing/notification.world';

describe('EmailDeliveryRepository', () => {
  const world = useNotificationWorld();

  /** A mailed notification (security notices are mailed by default). */
  async function mailed(recipientId = randomUUID()) {
    const write = newNotification({ recipientId, type: 'security', title: 'Careful' });
    await world.notifications.create(write);
    return {
      deliveryId: write.emailRequested.payload.deliveryId,
      notificationId: write.created.payload.id,
      recipientId,
    };
  }

  it('lists the deliveries of the notifications asked for and no others', async () => {
    const first = await mailed();
    const second = await mailed();
    await mailed();
    const listed = await world.deliveries.listFor([second.notificationId, first.notificationId]);
    expect(listed.map((delivery) => delivery.id).sort()).toEqual(
      [first.deliveryId, second.deliveryId].sort(),
    );
    expect(await world.deliveries.listFor([])).toEqual([]);
  });

  it('finds a pending delivery with what it mails, and nothing once its notification is gone', async () => {
    const { deliveryId, notificationId, recipientId } = await mailed();
    expect(await world.deliveries.find(deliveryId)).toMatchObject({
      id: deliveryId,
      status: 'PENDING',
      attempts: 0,
      notification: { recipientId, title: 'Careful', body: 'Body' },
    });
    await world.db.notification.delete({ where: { id: notificationId } });
    expect(await world.deliveries.find(deliveryId)).toBeNull();
  });

  it('records each outcome, leaving the attempts alone when none is given', async () => {
    const { deliveryId } = await mailed();
    await world.deliveries.record(deliveryId, {
      status: 'PENDING',
      attempts: 1,
      lastError: 'SMTP 451',
    });
    expect(await world.deliveries.find(deliveryId)).toMatchObject({
      attempts: 1,
      lastError: 'SMTP 451',
    });
    await world.deliveries.record(deliveryId, { status: 'FAILED', lastError: 'gone' });
    expect(await world.deliveries.find(deliveryId)).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      lastError: 'gone',
    });
  });
});
