import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { newCorrelationId, runWithContext, type Logger } from '@platform/logger';

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface HttpServer {
  readonly server: Server;
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting, lets in-flight requests finish, then closes idle keep-alive sockets. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Reads a JSON request body (at most 1 MiB); undefined when there is none. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw Object.assign(new Error('request body is not valid JSON'), { status: 400 });
  }
}

/**
 * A plain node:http server with exact-path routes. Every request runs in a request context
 * whose correlation id comes from `x-correlation-id` (when well-formed) or is new, and is
 * echoed in the response.
 */
export function createHttpServer(options: {
  logger: Logger;
  routes: Record<string, Route>;
}): HttpServer {
  const { logger, routes } = options;
  let closing = false;
  const server = createServer((req, res) => {
    if (closing) res.setHeader('connection', 'close');
    // A keep-alive connection whose request was in flight at close() goes idle only now.
    res.once('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    const correlationId = newCorrelationId(req.headers['x-correlation-id']?.toString());
    res.setHeader('x-correlation-id', correlationId);
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const route = routes[path];
    void runWithContext({ correlationId }, async () => {
      if (!route) return sendJson(res, 404, { error: 'not found' });
      try {
        await route(req, res);
      } catch (error) {
        const status = (error as { status?: number }).status;
        if (status && status < 500)
          return sendJson(res, status, { error: (error as Error).message });
        logger.error({ err: error, path }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal server error' });
        else res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return {
    server,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      closing = true;
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      });
    },
  };
}
