export { createLogger, type Logger } from './logger';
export {
  currentContext,
  newCorrelationId,
  runWithContext,
  type RequestContext,
} from './request-context';
