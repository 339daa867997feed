import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger';
import { newCorrelationId, runWithContext } from './request-context';

function capture() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return { stream, lines };
}

describe('createLogger', () => {
  it('adds the correlation id of the current request to every line', async () => {
    const { stream, lines } = capture();
    const log = createLogger({ name: 'test', destination: stream });
    runWithContext({ correlationId: 'corr-12345678', userId: 'u1' }, () => log.info('inside'));
    log.info('outside');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).toMatchObject({ msg: 'inside', correlationId: 'corr-12345678', userId: 'u1' });
    expect(lines[1]).not.toHaveProperty('correlationId');
  });

  it('never writes passwords or tokens', async () => {
    const { stream, lines } = capture();
    const log = createLogger({ name: 'test', destination: stream });
    log.info(
      {
        input: { password: 'hunter22', email: 'a@b.c', deviceToken: 'device-secret' },
        headers: { authorization: 'Bearer x' },
      },
      'x',
    );
    await new Promise((resolve) => setImmediate(resolve));
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('hunter22');
    expect(text).not.toContain('device-secret');
    expect(text).not.toContain('Bearer x');
    expect(text).toContain('a@b.c');
  });
});

describe('newCorrelationId', () => {
  it('keeps a well-formed id and replaces a malformed one', () => {
    expect(newCorrelationId('abc-DEF_12345')).toBe('abc-DEF_12345');
    expect(newCorrelationId('bad id\n with spaces')).toMatch(/^[0-9a-f-]{36}$/);
    expect(newCorrelationId(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('trace ids', () => {
  it('adds trace_id and span_id of the active span beside the correlation id', async () => {
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { context, trace } = await import('@opentelemetry/api');
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      const { stream, lines } = capture();
      const log = createLogger({ name: 'test', destination: stream });
      const spanContext = {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: 1,
      };
      context.with(trace.setSpanContext(context.active(), spanContext), () =>
        runWithContext({ correlationId: 'corr-12345678' }, () => log.info('traced')),
      );
      log.info('untraced');
      await new Promise((resolve) => setImmediate(resolve));
      expect(lines[0]).toMatchObject({
        correlationId: 'corr-12345678',
        trace_id: spanContext.traceId,
        span_id: spanContext.spanId,
      });
      expect(lines[1]).not.toHaveProperty('trace_id');
    } finally {
      context.disable();
      manager.disable();
    }
  });
});
