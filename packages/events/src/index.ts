export {
  createEvent,
  eventContracts,
  EVENT_TYPES,
  parseEvent,
  SESSION_REVOCATION_REASONS,
  type EventEnvelope,
  type EventOf,
  type EventPayload,
  type EventType,
} from './events';
