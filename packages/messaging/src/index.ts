export {
  createMessageBroker,
  isOutageFailure,
  type ConsumerOptions,
  type MessageBroker,
  type MessageBrokerOptions,
} from './message-broker';
