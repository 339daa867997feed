import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import {
  carriedTraceContext,
  carryTraceContext,
  contextFromHeaders,
  inSpan,
  passTraceContext,
  traceHeaders,
} from './tracing';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context helpers', () => {
  it('writes nothing when no span is active (tracing off)', async () => {
    expect(traceHeaders()).toEqual({});
    // Without a tracer provider a span is a no-op and no context manager carries it.
    await inSpan('work', {}, () => {
      expect(traceHeaders()).toEqual({});
      return Promise.resolve();
    });
    const value = carryTraceContext({ id: 1 });
    expect(carriedTraceContext(value)).toBeUndefined();
  });

  it('reads W3C headers (strings or Buffers, as AMQP delivers them) and writes them back', () => {
    const fromString = contextFromHeaders({ traceparent: TRACEPARENT, tracestate: 'a=1' });
    expect(trace.getSpanContext(fromString)).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      isRemote: true,
    });
    expect(traceHeaders(fromString)).toEqual({ traceparent: TRACEPARENT, tracestate: 'a=1' });
    const fromBuffer = contextFromHeaders({ traceparent: Buffer.from(TRACEPARENT) });
    expect(trace.getSpanContext(fromBuffer)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(trace.getSpanContext(contextFromHeaders(undefined))).toBeUndefined();
    expect(trace.getSpanContext(contextFromHeaders({ traceparent: 'garbage' }))).toBeUndefined();
  });

  it('passes a carried context from a value to another object, or forgets it', () => {
    const slot = {};
    const plain = { id: 2 };
    passTraceContext(plain, slot);
    expect(carriedTraceContext(slot)).toBeUndefined();
  });
});
