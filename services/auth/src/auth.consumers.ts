import type { Logger } from '@platform/logger';
import type { MessageBroker } from '@platform/messaging';
import type { CredentialService } from './credential.service';
import { RESET_MAIL_CONSUMER, type OneTimeTokenService } from './one-time-token.service';

/** The consumer (of user.status_changed) that ends what a disabled account still had. */
export const DISABLED_LOCKOUT_CONSUMER = 'auth.disabled-lockout';

/**
 * How long after a status event's time what was begun still counts as begun before the change:
 * the event is stamped before the status commits, by another service's clock, and a sign-in
 * racing the change can open its session just after. Only a sign-in after the account was
 * enabled again, within this allowance, would be ended too.
 */
export const LOCKOUT_ALLOWANCE_MS = 10_000;

/** The events the auth service acts on later. Each handler is idempotent per event id. */
export async function startAuthConsumers(deps: {
  broker: Pick<MessageBroker, 'consume'>;
  oneTimeTokens: Pick<OneTimeTokenService, 'sendRequestedReset'>;
  credentials: Pick<CredentialService, 'lockOut'>;
  logger: Pick<Logger, 'warn'>;
  /** Queues are named after the exchange, so isolated runs never share a queue. */
  queuePrefix: string;
}): Promise<void> {
  await deps.broker.consume({
    queue: `${deps.queuePrefix}.${RESET_MAIL_CONSUMER}`,
    events: ['auth.password_reset_requested'],
    handle: (event) => deps.oneTimeTokens.sendRequestedReset(event),
  });
  // `setUserStatus` locks a disabled account out itself, right after the status committed; if
  // that call failed (the auth service down or unreachable), the account's sessions would live
  // on until they expire. The status change's event does it here too, once delivered (with the
  // broker's retries): only what was begun before the change (and its allowance) ends, so an
  // event arriving after the account was enabled again leaves its new sessions alone. Usually
  // nothing is left to end. A redelivered event ends nothing more: no processOnce record needed.
  await deps.broker.consume({
    queue: `${deps.queuePrefix}.${DISABLED_LOCKOUT_CONSUMER}`,
    events: ['user.status_changed'],
    handle: async (event) => {
      if (event.payload.status !== 'DISABLED') return;
      const { userId } = event.payload;
      const before = new Date(Date.parse(event.occurredAt) + LOCKOUT_ALLOWANCE_MS);
      const ended = await deps.credentials.lockOut(userId, before);
      if (ended > 0)
        deps.logger.warn(
          { userId, ended, eventId: event.id },
          'sessions of a disabled account ended from its status event (the direct lock-out had not run)',
        );
    },
  });
}
