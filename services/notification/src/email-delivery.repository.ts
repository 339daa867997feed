import type { DeliveryStatus, EmailDelivery, Notification, PrismaClient } from '@platform/db';

export type DeliveryWithNotification = EmailDelivery & {
  notification: Pick<Notification, 'recipientId' | 'title' | 'body'>;
};

export interface EmailDeliveryRepository {
  /** The deliveries of these notifications, oldest first. */
  listFor(notificationIds: readonly string[]): Promise<EmailDelivery[]>;
  /** The delivery with what it mails; null when it went with its notification. */
  find(deliveryId: string): Promise<DeliveryWithNotification | null>;
  /** Records an attempt's outcome (or the delivery's end, without `attempts`). */
  record(
    deliveryId: string,
    outcome: { status: DeliveryStatus; lastError: string | null; attempts?: number },
  ): Promise<void>;
}

export function createEmailDeliveryRepository(db: PrismaClient): EmailDeliveryRepository {
  return {
    listFor(notificationIds) {
      return db.emailDelivery.findMany({
        where: { notificationId: { in: [...notificationIds] } },
        orderBy: { createdAt: 'asc' },
      });
    },
    find(deliveryId) {
      return db.emailDelivery.findUnique({
        where: { id: deliveryId },
        include: { notification: { select: { recipientId: true, title: true, body: true } } },
      });
    },
    async record(deliveryId, outcome) {
      await db.emailDelivery.update({ where: { id: deliveryId }, data: outcome });
    },
  };
}
