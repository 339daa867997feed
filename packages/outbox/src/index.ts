export { enqueueEvent, processOnce, type SqlExecutor } from './outbox';
export { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './outbox.relay';
