import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '@platform/errors';
import { createLogger } from '@platform/logger';
import type { Mail } from '@platform/mail';
import { createEmailDeliveryService } from './email-delivery.service';
import { createFakeEmailDeliveryRepository } from './testing/notification.fakes';

const logger = createLogger({ name: 'email-delivery-test', level: 'silent' });
const recipientId = randomUUID();
const notificationId = randomUUID();

/** A delivery of one notification to `recipientId`, and the mail that went out. */
function setUp(options: { failures?: number; users?: 'known' | 'unknown' | 'down' } = {}) {
  const deliveries = createFakeEmailDeliveryRepository({
    [notificationId]: { recipientId, title: 'Your password was changed', body: 'If not you…' },
  });
  const [deliveryId] = [...deliveries.deliveries.keys()];
  const sent: Mail[] = [];
  let failures = options.failures ?? 0;
  const service = createEmailDeliveryService({
    deliveries,
    users: {
      getUser: async ({ id }) => {
        if (options.users === 'unknown') throw AppError.notFound('User');
        if (options.users === 'down') throw new Error('14 UNAVAILABLE');
        return { user: { id, email: 'ada@example.com' } as never };
      },
    },
    mailer: {
      send: async (mail) => {
        if (failures-- > 0)
          throw Object.assign(new Error('rejected'), { responseCode: 451, response: 'try later' });
        sent.push(mail);
      },
    },
    logger,
    maxAttempts: 3,
  });
  const state = () => deliveries.deliveries.get(deliveryId!);
  return { service, deliveryId: deliveryId!, sent, state };
}

describe('EmailDeliveryService', () => {
  describe('deliver', () => {
    it('mails the notification to the recipient and records it SENT', async () => {
      const { service, deliveryId, sent, state } = setUp();
      await service.deliver(deliveryId);
      expect(sent).toEqual([
        { to: 'ada@example.com', subject: 'Your password was changed', text: 'If not you…' },
      ]);
      expect(state()).toMatchObject({ status: 'SENT', attempts: 1, lastError: null });
    });

    it('records each failed attempt with its reason, and FAILED after the last', async () => {
      const { service, deliveryId, sent, state } = setUp({ failures: 3 });
      await expect(service.deliver(deliveryId)).rejects.toThrow('rejected');
      expect(state()).toMatchObject({
        status: 'PENDING',
        attempts: 1,
        lastError: 'SMTP 451: try later',
      });
      await expect(service.deliver(deliveryId)).rejects.toThrow('rejected');
      await expect(service.deliver(deliveryId)).rejects.toThrow('rejected');
      expect(state()).toMatchObject({ status: 'FAILED', attempts: 3 });
      await service.deliver(deliveryId); // a late redelivery changes nothing
      expect(state()).toMatchObject({ status: 'FAILED', attempts: 3 });
      expect(sent).toEqual([]);
    });

    it('gives up at once, without mailing, when the recipient no longer exists', async () => {
      const { service, deliveryId, sent, state } = setUp({ users: 'unknown' });
      await service.deliver(deliveryId);
      expect(state()).toMatchObject({
        status: 'FAILED',
        attempts: 0,
        lastError: 'the recipient no longer exists',
      });
      expect(sent).toEqual([]);
    });

    it('asks for a retry, without counting an attempt, while the user service is down', async () => {
      const { service, deliveryId, state } = setUp({ users: 'down' });
      await expect(service.deliver(deliveryId)).rejects.toThrow('UNAVAILABLE');
      expect(state()).toMatchObject({ status: 'PENDING', attempts: 0 });
    });

    it('does nothing for a delivery that went with its notification', async () => {
      const { service, sent } = setUp();
      await service.deliver(randomUUID());
      expect(sent).toEqual([]);
    });
  });

  describe('listFor', () => {
    it('answers ids that are not ids with nothing, and refuses more than 100', async () => {
      const { service, deliveryId } = setUp();
      expect(await service.listFor(['nope', notificationId])).toMatchObject([{ id: deliveryId }]);
      await expect(
        service.listFor(Array.from({ length: 101 }, () => randomUUID())),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: /^notificationIds:/ });
    });
  });
});
