import type { EmailDelivery } from '@platform/db';
import { AppError, isAppError } from '@platform/errors';
import type { GrpcClient } from '@platform/grpc';
import type { Logger } from '@platform/logger';
import type { Mailer } from '@platform/mail';
import type { userV1 } from '@platform/proto';
import { isUuid } from '@platform/validation';
import type { EmailDeliveryRepository } from './email-delivery.repository';

type UserClient = GrpcClient<typeof userV1.UserServiceService>;

const MAX_LISTED = 100;

export interface EmailDeliveryService {
  /**
   * Makes one attempt at a delivery and records its outcome (status, attempts, reason).
   * Throws when the attempt failed, so the broker retries it with back-off and, after
   * `maxAttempts`, dead-letters it; the delivery is FAILED by then, with the last reason.
   */
  deliver(deliveryId: string): Promise<void>;
  /** The deliveries of up to 100 notifications (ids that are not ids have none). */
  listFor(notificationIds: readonly string[]): Promise<EmailDelivery[]>;
}

/** What a failure's reason may say: the SMTP reply or error code, never a stack. */
function reasonOf(error: unknown): string {
  const smtp = error as { responseCode?: number; response?: string; code?: string };
  if (smtp.responseCode) return `SMTP ${smtp.responseCode}: ${smtp.response ?? ''}`.slice(0, 300);
  if (smtp.code) return `mail transport: ${smtp.code}`;
  return 'mail transport error';
}

export function createEmailDeliveryService(deps: {
  deliveries: EmailDeliveryRepository;
  users: Pick<UserClient, 'getUser'>;
  mailer: Pick<Mailer, 'send'>;
  logger: Logger;
  maxAttempts: number;
}): EmailDeliveryService {
  const { deliveries, users, mailer, logger, maxAttempts } = deps;

  return {
    async deliver(deliveryId) {
      const delivery = await deliveries.find(deliveryId);
      // Deleted with its notification, or already settled by an earlier delivery of the event.
      if (!delivery || delivery.status !== 'PENDING') return;

      let to: string;
      try {
        const { user } = await users.getUser({ id: delivery.notification.recipientId });
        if (!user) throw new Error('user service answered without a user');
        to = user.email;
      } catch (error) {
        if (isAppError(error) && error.code === 'NOT_FOUND') {
          await deliveries.record(deliveryId, {
            status: 'FAILED',
            lastError: 'the recipient no longer exists',
          });
          return;
        }
        throw error; // the user service is unavailable: retried like a mail failure
      }

      const attempts = delivery.attempts + 1;
      try {
        await mailer.send({
          to,
          subject: delivery.notification.title,
          text: delivery.notification.body,
        });
      } catch (error) {
        const failed = attempts >= maxAttempts;
        await deliveries.record(deliveryId, {
          attempts,
          lastError: reasonOf(error),
          status: failed ? 'FAILED' : 'PENDING',
        });
        logger.warn(
          { deliveryId, attempts, failed, reason: reasonOf(error) },
          failed ? 'email delivery failed for good' : 'email delivery failed; will retry',
        );
        throw error;
      }
      await deliveries.record(deliveryId, { attempts, status: 'SENT', lastError: null });
    },

    async listFor(notificationIds) {
      if (notificationIds.length > MAX_LISTED)
        throw AppError.badInput('notificationIds', `at most ${MAX_LISTED} per call`);
      return deliveries.listFor(notificationIds.filter((id) => isUuid(id)));
    },
  };
}
