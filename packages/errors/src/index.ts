export {
  AppError,
  isAppError,
  type AppErrorOptions,
  type ErrorCode,
  type TokenRefusal,
  OUTAGE_RETRY_AFTER_SECONDS,
  TOKEN_REFUSAL_REASON,
} from './app-error';
export { DependencyUnavailableError, isDependencyOutage } from './outage';
export {
  formatGraphQLError,
  formatResultErrors,
  fromGrpcError,
  toGrpcError,
  toGraphQLError,
  type HttpAnswer,
  INTERNAL_MESSAGE,
  outageAnswer,
  toAppError,
} from './translate';
