import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { shortened } from '@platform/collections';
import { AppError, OUTAGE_RETRY_AFTER_SECONDS, type ErrorCode } from './app-error';
import { isDependencyOutage } from './outage';

// The one translation table: domain error code <-> gRPC status <-> GraphQL extensions.code.
const GRPC_STATUS: Record<ErrorCode, status> = {
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  FORBIDDEN: status.PERMISSION_DENIED,
  BAD_USER_INPUT: status.INVALID_ARGUMENT,
  QUERY_TOO_COMPLEX: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  CONFLICT: status.ALREADY_EXISTS,
  RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  SERVICE_UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL_SERVER_ERROR: status.INTERNAL,
};

// A status shared by two codes maps back to the first of them.
const CODE_BY_STATUS = new Map<status, ErrorCode>();
for (const [code, grpcStatus] of Object.entries(GRPC_STATUS))
  if (!CODE_BY_STATUS.has(grpcStatus)) CODE_BY_STATUS.set(grpcStatus, code as ErrorCode);

export const INTERNAL_MESSAGE = 'Internal server error';

const ERROR_CODE_KEY = 'x-error-code';
const FIELD_KEY = 'x-error-field';
const RETRY_AFTER_KEY = 'x-retry-after';
const REASON_KEY = 'x-error-reason';

export interface GrpcErrorShape {
  code: status;
  details: string;
  metadata: Metadata;
}

/**
 * What the caller is told about anything thrown: AppErrors as they are, a dependency outage
 * as SERVICE_UNAVAILABLE, anything else as a masked INTERNAL_SERVER_ERROR (the original stays
 * as `cause`, for the log).
 */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (isDependencyOutage(error)) return AppError.unavailable(error);
  return new AppError('INTERNAL_SERVER_ERROR', INTERNAL_MESSAGE, { cause: error });
}

/**
 * The longest message a gRPC error carries. grpc-js sends it in an HTTP/2 trailer
 * (percent-encoded: up to 9 bytes a character); one larger than the peer accepts breaks the
 * connection, and every call on it waits for its deadline. Messages that repeat an input
 * (validation) are cut here, whatever their length.
 */
export const MAX_GRPC_MESSAGE_LENGTH = 1_000;

/** Turns anything a handler threw into a gRPC error; unexpected errors are masked. */
export function toGrpcError(thrown: unknown): GrpcErrorShape {
  const metadata = new Metadata();
  const error = toAppError(thrown);
  if (error.code === 'INTERNAL_SERVER_ERROR') {
    metadata.set(ERROR_CODE_KEY, 'INTERNAL_SERVER_ERROR');
    return { code: status.INTERNAL, details: INTERNAL_MESSAGE, metadata };
  }
  metadata.set(ERROR_CODE_KEY, error.code);
  if (error.field) metadata.set(FIELD_KEY, error.field);
  if (error.retryAfter !== undefined) metadata.set(RETRY_AFTER_KEY, String(error.retryAfter));
  if (error.reason) metadata.set(REASON_KEY, error.reason);
  return {
    code: GRPC_STATUS[error.code],
    details: shortened(error.message, MAX_GRPC_MESSAGE_LENGTH),
    metadata,
  };
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number';
}

// Transport failures without a declared code: the service is down, restarting or overloaded.
const OUTAGE_STATUSES = new Set<status>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/**
 * Turns a failed gRPC call back into an AppError. A service that cannot be reached or did
 * not answer in time is SERVICE_UNAVAILABLE; other transport failures become
 * INTERNAL_SERVER_ERROR with a masked message; the original stays as `cause` for the log.
 */
export function fromGrpcError(error: unknown): AppError {
  if (!isServiceError(error)) {
    return new AppError('INTERNAL_SERVER_ERROR', INTERNAL_MESSAGE, { cause: error });
  }
  const metadata = error.metadata as Metadata | undefined;
  const declared = metadata?.get(ERROR_CODE_KEY)[0]?.toString() as ErrorCode | undefined;
  if (!declared && OUTAGE_STATUSES.has(error.code)) return AppError.unavailable(error);
  const code = declared && declared in GRPC_STATUS ? declared : CODE_BY_STATUS.get(error.code);
  if (!code || code === 'INTERNAL_SERVER_ERROR' || !declared) {
    return new AppError('INTERNAL_SERVER_ERROR', INTERNAL_MESSAGE, { cause: error });
  }
  const retryAfter = Number(metadata?.get(RETRY_AFTER_KEY)[0]?.toString());
  return new AppError(code, error.details, {
    field: metadata?.get(FIELD_KEY)[0]?.toString(),
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined,
    reason: metadata?.get(REASON_KEY)[0]?.toString(),
    cause: error,
  });
}

/** How Apollo Server answers a request refused before execution (`extensions.http`). */
export interface HttpAnswer {
  status: number;
  headers?: Map<string, string>;
}

/**
 * Turns an error into what a GraphQL client sees: the contract's code, nothing internal.
 * With `http`, Apollo Server answers a request refused before execution with that status.
 */
export function toGraphQLError(error: unknown, http?: HttpAnswer): GraphQLError {
  const appError = error instanceof AppError ? error : fromGrpcError(error);
  const extensions: Record<string, unknown> = { ...appError.details, code: appError.code };
  if (appError.field) extensions['field'] = appError.field;
  if (appError.retryAfter !== undefined) extensions['retryAfter'] = appError.retryAfter;
  if (appError.reason) extensions['reason'] = appError.reason;
  if (http) extensions['http'] = http;
  return new GraphQLError(appError.message, { extensions });
}

/** HTTP 503 with Retry-After: how a request refused for a dependency outage is answered. */
export function outageAnswer(retryAfter: number | undefined): HttpAnswer {
  return {
    status: 503,
    headers: new Map([['retry-after', String(retryAfter ?? OUTAGE_RETRY_AFTER_SECONDS)]]),
  };
}

const CONTRACT_CODES = new Set<string>(Object.keys(GRPC_STATUS));
// Apollo's own codes for requests that never reached a resolver: the caller's input was wrong.
const REQUEST_ERROR_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/**
 * Apollo `formatError` for every GraphQL server of the platform: AppErrors keep their code
 * and message, request errors become BAD_USER_INPUT, anything else is logged by the caller
 * (`onInternal`) and masked as INTERNAL_SERVER_ERROR.
 */
export function formatGraphQLError(
  formatted: GraphQLFormattedError,
  error: unknown,
  onInternal: (error: unknown) => void,
): GraphQLFormattedError {
  const unwrapped = unwrapResolverError(error);
  // A driver's error thrown straight into a resolver (Redis down in a subgraph) is an outage too.
  const original =
    !(unwrapped instanceof AppError) && isDependencyOutage(unwrapped)
      ? AppError.unavailable(unwrapped)
      : unwrapped;
  const base = {
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
  };
  if (original instanceof AppError && original.code !== 'INTERNAL_SERVER_ERROR') {
    // An outage is reported (with its cause) as well as answered.
    if (original.code === 'SERVICE_UNAVAILABLE' && original.cause) onInternal(original);
    const translated = toGraphQLError(original);
    return { ...base, message: translated.message, extensions: translated.extensions };
  }
  const code = formatted.extensions?.['code'];
  if (typeof code === 'string' && REQUEST_ERROR_CODES.has(code)) {
    return { ...base, message: formatted.message, extensions: { code: 'BAD_USER_INPUT' } };
  }
  if (typeof code === 'string' && CONTRACT_CODES.has(code) && code !== 'INTERNAL_SERVER_ERROR') {
    // Already translated upstream (a subgraph's error passing through the gateway).
    return { ...base, message: formatted.message, extensions: pickPublic(formatted.extensions) };
  }
  if (answersClientFault(original)) {
    return { ...base, message: formatted.message, extensions: { code: 'BAD_USER_INPUT' } };
  }
  onInternal(original);
  return { ...base, message: INTERNAL_MESSAGE, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/**
 * Whether Apollo Server refused the request itself with a 4xx but no code: its persisted-query
 * checks ("Unsupported persisted query version", "provided sha does not match query") set only
 * the HTTP status. The caller's input was wrong, as for the request codes above.
 */
function answersClientFault(error: unknown): boolean {
  // By shape: Apollo Server and this package may hold different copies of graphql-js.
  const extensions = (
    error as { extensions?: { code?: unknown; http?: { status?: unknown } } } | undefined
  )?.extensions;
  // An error that names its code said what it is: only a code-less 4xx is Apollo's refusal.
  if (extensions?.code !== undefined) return false;
  const status = extensions?.http?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function pickPublic(extensions: GraphQLFormattedError['extensions']): Record<string, unknown> {
  const { code, field, retryAfter, reason, limit, measured, mfaChallenge } = extensions ?? {};
  return {
    code,
    ...(field !== undefined ? { field } : {}),
    ...(retryAfter !== undefined ? { retryAfter } : {}),
    ...(reason !== undefined ? { reason } : {}),
    // QUERY_TOO_COMPLEX: the limit exceeded and the operation's measured value.
    ...(limit !== undefined ? { limit } : {}),
    ...(measured !== undefined ? { measured } : {}),
    // UNAUTHENTICATED with reason MFA_REQUIRED: the challenge a right password earned.
    ...(mfaChallenge !== undefined ? { mfaChallenge } : {}),
  };
}

/**
 * An execution result as a client may see it: every error formatted by `formatGraphQLError`
 * (for results that do not pass through Apollo Server, e.g. over WebSocket); undefined when
 * there is nothing to change.
 */
export function formatResultErrors<T extends { errors?: readonly GraphQLError[] | undefined }>(
  result: T,
  onInternal: (error: unknown) => void,
): (Omit<T, 'errors'> & { errors: GraphQLFormattedError[] }) | undefined {
  if (!result.errors?.length) return undefined;
  return {
    ...result,
    errors: result.errors.map((error) => formatGraphQLError(error.toJSON(), error, onInternal)),
  };
}
