export {
  createOutboxInsert,
  enqueueEvent,
  processOnce,
  type OutboxInsert,
  type SqlExecutor,
} from './outbox';
export { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './outbox.relay';
