import type { PrismaClient } from '@platform/db';
import type { MessageBroker } from '@platform/messaging';
import { processOnce } from '@platform/outbox';
import type { PermissionCache } from './permission.cache';
import { RBAC_SCHEMA } from './permission.repository';

const USER_DELETED_CONSUMER = 'permission.user-deleted';

/** A deleted user's role assignments go with them (once per event, however often delivered). */
export async function startPermissionConsumers(deps: {
  broker: MessageBroker;
  db: PrismaClient;
  cache: PermissionCache;
  queuePrefix: string;
}): Promise<void> {
  const { broker, db, cache } = deps;
  await broker.consume({
    queue: `${deps.queuePrefix}.${USER_DELETED_CONSUMER}`,
    events: ['user.deleted'],
    async handle(event) {
      const { userId } = event.payload;
      await db.$transaction(async (tx) => {
        if (!(await processOnce(tx, RBAC_SCHEMA, USER_DELETED_CONSUMER, event.id))) return;
        await tx.roleAssignment.deleteMany({ where: { userId } });
      });
      await cache.forgetUser(userId);
    },
  });
}
