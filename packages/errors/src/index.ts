export { AppError, isAppError, type AppErrorOptions, type ErrorCode } from './app-error';
export {
  formatGraphQLError,
  fromGrpcError,
  toGrpcError,
  toGraphQLError,
  INTERNAL_MESSAGE,
} from './translate';
