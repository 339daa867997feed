export {
  createMessageBroker,
  type ConsumerOptions,
  type MessageBroker,
  type MessageBrokerOptions,
} from './message-broker';
