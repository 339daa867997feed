import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { Writable } from 'node:stream';
import { counter, histogram } from './registry';
import { serveMetrics } from './metrics.server';

const logger = createLogger({
  name: 'test',
  level: 'silent',
  destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
});

describe('serveMetrics', () => {
  it('serves nothing on port 0, else the registry on /metrics with the app label and Node runtime metrics', async () => {
    const calls = counter({ name: 'test_calls_total', help: 'calls', labelNames: ['kind'] });
    const seconds = histogram({ name: 'test_duration_seconds', help: 'duration' });
    const server = await serveMetrics({ app: 'test-app', host: '127.0.0.1', port: 0, logger });
    expect(server.port).toBeUndefined();
    await server.close();

    // Any free port: 0 means off, so ask the OS for one first.
    const { createServer } = await import('node:net');
    const probe = createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise((resolve) => probe.close(resolve));
    const live = await serveMetrics({ app: 'test-app', host: '127.0.0.1', port, logger });
    try {
      calls.labels('a').inc();
      seconds.observe(0.02);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('test_calls_total{kind="a",app="test-app"} 1');
      expect(text).toContain('test_duration_seconds_bucket{le="0.025",app="test-app"} 1');
      expect(text).toContain('nodejs_eventloop_lag_p99_seconds{app="test-app"}');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      await live.close();
    }
  });
});
