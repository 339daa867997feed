import type { MessageBroker } from '@platform/messaging';
import type { PermissionCache } from './permission.cache';
import type { RoleRepository } from './role.repository';

const USER_DELETED_CONSUMER = 'permission.user-deleted';

/** A deleted user's role assignments go with them (once per event, however often delivered). */
export async function startPermissionConsumers(deps: {
  broker: MessageBroker;
  roles: RoleRepository;
  cache: PermissionCache;
  queuePrefix: string;
}): Promise<void> {
  const { broker, roles, cache } = deps;
  await broker.consume({
    queue: `${deps.queuePrefix}.${USER_DELETED_CONSUMER}`,
    events: ['user.deleted'],
    async handle(event) {
      const { userId } = event.payload;
      await roles.removeUser(userId, USER_DELETED_CONSUMER, event.id);
      // Also on a redelivery: the bump may be what failed the first time.
      await cache.forgetUser(userId);
    },
  });
}
