import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { createTestRun, type TestRun } from '@platform/testing';
import {
  createEmailDeliveryRepository,
  type EmailDeliveryRepository,
} from './email-delivery.repository';
import { createNotificationRepository } from './notification.repository';
import { newNotification } from './testing/notification.factories';

describe('EmailDeliveryRepository', () => {
  let run: TestRun;
  let db: Database;
  let deliveries: EmailDeliveryRepository;

  beforeAll(async () => {
    run = await createTestRun();
    db = await connectDatabase({ databaseUrl: run.databaseUrl });
    deliveries = createEmailDeliveryRepository(db);
  });

  afterAll(async () => {
    await db.$disconnect();
    await run.close();
  });

  /** A mailed notification (security notices are mailed by default). */
  async function mailed(recipientId = randomUUID()) {
    const write = newNotification({ recipientId, type: 'security', title: 'Careful' });
    await createNotificationRepository(db).create(write);
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
    const listed = await deliveries.listFor([second.notificationId, first.notificationId]);
    expect(listed.map((delivery) => delivery.id).sort()).toEqual(
      [first.deliveryId, second.deliveryId].sort(),
    );
    expect(await deliveries.listFor([])).toEqual([]);
  });

  it('finds a pending delivery with what it mails, and nothing once its notification is gone', async () => {
    const { deliveryId, notificationId, recipientId } = await mailed();
    expect(await deliveries.find(deliveryId)).toMatchObject({
      id: deliveryId,
      status: 'PENDING',
      attempts: 0,
      notification: { recipientId, title: 'Careful', body: 'Body' },
    });
    await db.notification.delete({ where: { id: notificationId } });
    expect(await deliveries.find(deliveryId)).toBeNull();
  });

  it('records each outcome, leaving the attempts alone when none is given', async () => {
    const { deliveryId } = await mailed();
    await deliveries.record(deliveryId, { status: 'PENDING', attempts: 1, lastError: 'SMTP 451' });
    expect(await deliveries.find(deliveryId)).toMatchObject({ attempts: 1, lastError: 'SMTP 451' });
    await deliveries.record(deliveryId, { status: 'FAILED', lastError: 'gone' });
    expect(await deliveries.find(deliveryId)).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      lastError: 'gone',
    });
  });
});
