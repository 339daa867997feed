import { isSpanContextValid, trace } from '@opentelemetry/api';
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

/** The active span's ids (OpenTelemetry), when tracing is on and a span is active. */
function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan()?.spanContext();
  return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
}

/**
 * Structured JSON logs; every line inside a request carries its correlation id, and its
 * trace and span ids when tracing is on.
 */
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
              ...traceFields(),
            }
          : traceFields();
      },
    },
    options.destination ?? process.stdout,
  );
}
