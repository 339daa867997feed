import type { MessageBroker } from '@platform/messaging';
import type { AssignmentService } from './assignment.service';
import type { MfaStates } from './mfa-state.service';

const USER_DELETED_CONSUMER = 'permission.user-deleted';
const MFA_CHANGED_CONSUMER = 'permission.mfa-changed';

/**
 * A deleted user's role assignments go with them; a user's second factors, as the MFA policy
 * needs them, follow auth.mfa_changed (once per event, however often delivered).
 */
export async function startPermissionConsumers(deps: {
  broker: MessageBroker;
  assignments: Pick<AssignmentService, 'removeDeletedUser'>;
  mfa: Pick<MfaStates, 'record'>;
  queuePrefix: string;
}): Promise<void> {
  const { broker, assignments, mfa } = deps;
  await broker.consume({
    queue: `${deps.queuePrefix}.${USER_DELETED_CONSUMER}`,
    events: ['user.deleted'],
    async handle(event) {
      await assignments.removeDeletedUser(event.payload.userId, USER_DELETED_CONSUMER, event.id);
    },
  });
  await broker.consume({
    queue: `${deps.queuePrefix}.${MFA_CHANGED_CONSUMER}`,
    events: ['auth.mfa_changed'],
    // Only a signal: the state is read from the auth service (MfaStates.record), never taken
    // from the event (any holder of the broker's credential could publish one); while the auth
    // service cannot answer, the delivery fails and is retried.
    async handle(event) {
      await mfa.record(event.payload.userId, MFA_CHANGED_CONSUMER, event.id);
    },
  });
}
