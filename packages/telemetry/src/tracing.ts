import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

export { SpanKind };

/** W3C trace context headers: `traceparent` and, when there is one, `tracestate`. */
export type TraceCarrier = Record<string, string>;

// Internal hops (outbox rows, message headers, subscription events) always use W3C trace
// context, whatever the process-wide propagator is (the gateway may be set to ignore a
// client's `traceparent`, never its own subgraphs').
const w3c = new W3CTraceContextPropagator();

const getter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const value = carrier[key];
    if (typeof value === 'string') return value;
    if (Buffer.isBuffer(value)) return value.toString('utf8');
    return undefined;
  },
};

const setter: TextMapSetter<TraceCarrier> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/**
 * The current trace context as W3C headers, to write into an outbox row, a message's
 * headers or an event. Empty when no span is active (always so when tracing is off).
 */
export function traceHeaders(from: Context = context.active()): TraceCarrier {
  const carrier: TraceCarrier = {};
  if (trace.getSpan(from)) w3c.inject(from, carrier, setter);
  return carrier;
}

/** The trace context that `traceHeaders` wrote (a root context when there is none). */
export function contextFromHeaders(headers: Record<string, unknown> | null | undefined): Context {
  if (
    !headers ||
    (typeof headers.traceparent !== 'string' && !Buffer.isBuffer(headers.traceparent))
  )
    return ROOT_CONTEXT;
  return w3c.extract(ROOT_CONTEXT, headers, getter);
}

const TRACER = '@platform/telemetry';

/**
 * Runs `fn` in a new active span (a child of `parent`, else of the active span); records a
 * thrown error on it and ends it. Without a tracer provider (tracing off) the span is a
 * no-op that costs next to nothing.
 */
export function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; links?: Link[]; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const { parent, ...spanOptions } = options;
  return trace
    .getTracer(TRACER)
    .startActiveSpan(name, spanOptions, parent ?? context.active(), async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : undefined,
        });
        throw error;
      } finally {
        span.end();
      }
    });
}

// Trace context riding with a value through code that loses the async context (a live
// event handed from a message consumer to a subscription's iterator).
const carried = new WeakMap<object, TraceCarrier>();

/** Remembers the current trace context with `value` (nothing when tracing is off). */
export function carryTraceContext<T extends object>(value: T): T {
  const headers = traceHeaders();
  if (headers.traceparent) carried.set(value, headers);
  return value;
}

/** The trace context remembered with `value`, if any. */
export function carriedTraceContext(value: object): TraceCarrier | undefined {
  return carried.get(value);
}

/** Hands the trace context remembered with `from` on to `to` (or forgets `to`'s); returns `from`. */
export function passTraceContext<T extends object>(from: T, to: object): T {
  const headers = carried.get(from);
  if (headers) carried.set(to, headers);
  else carried.delete(to);
  return from;
}

/** Set by `startTelemetry` when it started a tracer provider: flushes and stops it. */
const SHUTDOWN = Symbol.for('@platform/telemetry.shutdown');

/** Exports the spans still buffered (at shutdown); a no-op when tracing is off. */
export async function flushTelemetry(): Promise<void> {
  const shutdown = (globalThis as { [SHUTDOWN]?: () => Promise<void> })[SHUTDOWN];
  await shutdown?.();
}

export function setTelemetryShutdown(shutdown: () => Promise<void>): void {
  (globalThis as { [SHUTDOWN]?: () => Promise<void> })[SHUTDOWN] = shutdown;
}
