export {
  carryTraceContext,
  carriedTraceContext,
  contextFromHeaders,
  flushTelemetry,
  inSpan,
  passTraceContext,
  SpanKind,
  traceHeaders,
  type TraceCarrier,
} from './tracing';
