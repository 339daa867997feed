// Test-only: a test file's own database (created and migrated before its tests, dropped after
// them) with the notification service's repositories and use cases on it. Redis and the user
// service are in-memory fakes: the integration tests are about PostgreSQL.
import { beforeAll } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { createTestRun } from '@platform/testing';
import {
  createEmailDeliveryRepository,
  type EmailDeliveryRepository,
} from '../email-delivery.repository';
import {
  createNotificationRepository,
  type NotificationRepository,
} from '../notification.repository';
import { createNotificationService, type NotificationService } from '../notification.service';
import { createPreferenceService, type PreferenceService } from '../preference.service';
import { createFakeRecipientDirectory, createFakeInboxHeadCache } from './notification.fakes';

export interface NotificationWorld {
  readonly db: Database;
  readonly notifications: NotificationRepository;
  readonly deliveries: EmailDeliveryRepository;
  readonly service: NotificationService;
  readonly preferences: PreferenceService;
  /** The users the (fake) user service knows: add a recipient before sending to them. */
  readonly users: Set<string>;
  /** Sessions of this database waiting for a lock, as PostgreSQL reports them. */
  waitingForLocks(): Promise<number>;
}

/** The world of the file's tests; its fields are there once the tests run. */
export function useNotificationWorld(): NotificationWorld {
  const world = {} as { -readonly [K in keyof NotificationWorld]: NotificationWorld[K] };
  beforeAll(async () => {
    const run = await createTestRun();
    const db = await connectDatabase({ databaseUrl: run.databaseUrl });
    const notifications = createNotificationRepository(db);
    const users = new Set<string>();
    Object.assign(world, {
      db,
      notifications,
      deliveries: createEmailDeliveryRepository(db),
      service: createNotificationService({
        notifications,
        inboxHeads: createFakeInboxHeadCache(),
        recipients: createFakeRecipientDirectory(users),
        relay: { kick: () => undefined },
      }),
      preferences: createPreferenceService({ notifications }),
      users,
      async waitingForLocks() {
        const [row] = await db.$queryRaw<{ count: bigint }[]>`SELECT count(*) AS count
          FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
        return Number(row?.count ?? 0);
      },
    } satisfies NotificationWorld);
    return async () => {
      await db.$disconnect();
      await run.close();
    };
  });
  return world;
}
