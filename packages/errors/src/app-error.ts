/** The public error codes of the API contract (GraphQL `extensions.code`). */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  /** The operation exceeds a depth, field or cost limit (the gateway, before planning). */
  | 'QUERY_TOO_COMPLEX'
  /** A dependency the answer needs is down: retryable (`retryAfter`), HTTP 503, never a client fault. */
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

export interface AppErrorOptions {
  /** The input field at fault, for BAD_USER_INPUT. */
  field?: string | undefined;
  /** Seconds until a retry may succeed, for RATE_LIMITED and SERVICE_UNAVAILABLE. */
  retryAfter?: number | undefined;
  /** A machine-readable refinement of the code (`extensions.reason`), e.g. `expired`. */
  reason?: string | undefined;
  /**
   * What the caller needs to go on, shown as `extensions.<name>` (e.g. the MFA challenge a
   * right password earns). Public by construction: never anything internal.
   */
  details?: Readonly<Record<string, unknown>> | undefined;
  cause?: unknown;
}

/** Why an access token was refused: the client refreshes on `expired`, signs in again otherwise. */
export type TokenRefusal = 'invalid' | 'expired' | 'ended';

/** The contract's `extensions.reason` for each refusal. */
export const TOKEN_REFUSAL_REASON = {
  invalid: 'TOKEN_INVALID',
  expired: 'TOKEN_EXPIRED',
  ended: 'SESSION_ENDED',
} as const satisfies Record<TokenRefusal, string>;

/** Seconds a client is told to wait before retrying after a dependency outage. */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;

/**
 * An expected failure with a stable code. Its message is shown to the caller, so it must
 * never contain internals; unexpected errors are plain `Error`s and get masked.
 */
export class AppError extends Error {
  readonly field: string | undefined;
  readonly retryAfter: number | undefined;
  readonly reason: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.field = options.field;
    this.retryAfter = options.retryAfter;
    this.reason = options.reason;
    this.details = options.details;
  }

  static badInput(field: string, reason: string): AppError {
    return new AppError('BAD_USER_INPUT', `${field}: ${reason}`, { field });
  }

  /**
   * A mailed single-use token (email verification, password reset) that cannot be used:
   * unknown, expired, already used, or its account's state forbids it. One answer for all.
   */
  static unusableToken(): AppError {
    return AppError.badInput('token', 'is invalid, expired or already used');
  }

  static notFound(what: string): AppError {
    return new AppError('NOT_FOUND', `${what} not found`);
  }

  static unauthenticated(message = 'Not signed in'): AppError {
    return new AppError('UNAUTHENTICATED', message);
  }

  /** A presented access token that cannot be used: a client fault, never a server error. */
  static tokenRefused(reason: TokenRefusal): AppError {
    const messages: Record<TokenRefusal, string> = {
      invalid: 'Invalid access token',
      expired: 'Access token has expired',
      ended: 'Session has ended',
    };
    return new AppError('UNAUTHENTICATED', messages[reason], {
      reason: TOKEN_REFUSAL_REASON[reason],
    });
  }

  static forbidden(message = 'Not allowed'): AppError {
    return new AppError('FORBIDDEN', message);
  }

  static conflict(message: string): AppError {
    return new AppError('CONFLICT', message);
  }

  /**
   * A dependency (PostgreSQL, Redis, RabbitMQ, another service) is unreachable: the request
   * fails closed and may be retried. The message names nothing internal; `cause` (logged) does.
   */
  static unavailable(cause?: unknown, retryAfter = OUTAGE_RETRY_AFTER_SECONDS): AppError {
    return new AppError(
      'SERVICE_UNAVAILABLE',
      'Service temporarily unavailable; try again shortly',
      {
        retryAfter,
        cause,
      },
    );
  }

  static rateLimited(retryAfter: number): AppError {
    return new AppError('RATE_LIMITED', 'Too many attempts; try again later', { retryAfter });
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
