import { pino, type Logger as PinoLogger } from 'pino';
import { currentContext } from './request-context';

export type Logger = PinoLogger;

export interface LoggerOptions {
  /** The app's name, on every line. */
  name: string;
  level?: string;
  /** Where lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

// Secrets never reach the log, wherever they appear in a logged object.
const REDACT = [
  'password',
  'newPassword',
  'currentPassword',
  'token',
  'accessToken',
  'refreshToken',
  'deviceToken',
  'authorization',
  'internalToken',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.deviceToken',
  '*.authorization',
  '*.internalToken',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-internal-token"]',
];

/** Structured JSON logs; every line inside a request carries its correlation id. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const context = currentContext();
        return context
          ? {
              correlationId: context.correlationId,
              ...(context.userId ? { userId: context.userId } : {}),
            }
          : {};
      },
    },
    options.destination ?? process.stdout,
  );
}
