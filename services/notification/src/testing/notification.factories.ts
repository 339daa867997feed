// Test-only: what the integration tests write, built the way the use cases build it.
import { randomUUID } from 'node:crypto';
import type { NotificationWrite } from '../notification.repository';
import { composeNotification, type NewNotification } from '../notification.service';

/** A note to a new recipient unless told otherwise. */
export function newNotification(
  change: Partial<NewNotification> & {
    createdAt?: Date;
    source?: NotificationWrite['source'];
  } = {},
): NotificationWrite {
  const { createdAt, source, ...input } = change;
  return composeNotification(
    { recipientId: randomUUID(), type: 'note', title: 'Hello', body: 'Body', ...input },
    { createdAt, source },
  );
}
