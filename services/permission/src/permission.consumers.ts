import type { MessageBroker } from '@platform/messaging';
import type { AssignmentService } from './assignment.service';

const USER_DELETED_CONSUMER = 'permission.user-deleted';

/** A deleted user's role assignments go with them (once per event, however often delivered). */
export async function startPermissionConsumers(deps: {
  broker: MessageBroker;
  assignments: Pick<AssignmentService, 'removeDeletedUser'>;
  queuePrefix: string;
}): Promise<void> {
  const { broker, assignments } = deps;
  await broker.consume({
    queue: `${deps.queuePrefix}.${USER_DELETED_CONSUMER}`,
    events: ['user.deleted'],
    async handle(event) {
      await assignments.removeDeletedUser(event.payload.userId, USER_DELETED_CONSUMER, event.id);
    },
  });
}
