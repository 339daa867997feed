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
  INTERNAL_MESSAGE,
} from './translate';
