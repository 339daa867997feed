import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@platform/logger';
import { initMetrics, registry } from './registry';

/** The app's name as its logger carries it (`createLogger({ name })`): the `app` label. */
export function appNameOf(logger: Pick<Logger, 'bindings'>, fallback: string): string {
  const name = (logger.bindings() as Record<string, unknown>)['name'];
  return typeof name === 'string' ? name : fallback;
}

export interface MetricsServer {
  /** The bound port; undefined when metrics are off (port 0). */
  readonly port: number | undefined;
  close(): Promise<void>;
}

/**
 * The app's internal `/metrics` endpoint (Prometheus text format) on its own port, apart
 * from anything public. Port `0` turns it off (the metrics are still kept, just not served).
 */
export async function serveMetrics(options: {
  app: string;
  host: string;
  port: number;
  logger: Logger;
  lifecycle?: { onShutdown(name: string, teardown: () => Promise<void> | void): void };
}): Promise<MetricsServer> {
  initMetrics(options.app);
  if (options.port === 0) return { port: undefined, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType }).end(text);
      },
      (error: unknown) => {
        options.logger.warn({ err: error }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  options.logger.info({ host: options.host, port }, 'metrics listening');
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  options.lifecycle?.onShutdown('metrics server', close);
  return { port, close };
}
