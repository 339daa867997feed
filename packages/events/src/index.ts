export {
  createEvent,
  eventContracts,
  EVENT_TYPES,
  parseEvent,
  type EventEnvelope,
  type EventPayload,
  type EventType,
} from './events';
