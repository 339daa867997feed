export {
  AppError,
  isAppError,
  type AppErrorOptions,
  type ErrorCode,
  type TokenRefusal,
} from './app-error';
export {
  formatGraphQLError,
  formatResultErrors,
  fromGrpcError,
  toGrpcError,
  toGraphQLError,
  type HttpAnswer,
  INTERNAL_MESSAGE,
} from './translate';
