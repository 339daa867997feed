import type { MessageBroker } from '@platform/messaging';
import { RESET_MAIL_CONSUMER, type OneTimeTokenService } from './one-time-token.service';

/** The auth service's own events that it acts on later. Each handler is idempotent per event id. */
export async function startAuthConsumers(deps: {
  broker: Pick<MessageBroker, 'consume'>;
  oneTimeTokens: Pick<OneTimeTokenService, 'sendRequestedReset'>;
  /** Queues are named after the exchange, so isolated runs never share a queue. */
  queuePrefix: string;
}): Promise<void> {
  await deps.broker.consume({
    queue: `${deps.queuePrefix}.${RESET_MAIL_CONSUMER}`,
    events: ['auth.password_reset_requested'],
    handle: (event) => deps.oneTimeTokens.sendRequestedReset(event),
  });
}
