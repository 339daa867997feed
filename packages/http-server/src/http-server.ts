import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { newCorrelationId, runWithContext, type Logger } from '@platform/logger';

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface HttpServer {
  readonly server: Server;
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops accepting connections and lets in-flight requests finish; every response from then
   * on says `Connection: close`. Keep-alive connections that are idle are closed only after
   * `idleGraceMs`: a client may be writing a request on one at this very moment, and closing
   * it under that request would reset it (the client cannot know whether it was handled).
   */
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

/**
 * The path a request target names: origin-form (`/graphql?x=1`), or absolute-form
 * (`http://host/graphql?x=1`), which HTTP/1.1 servers must accept too (RFC 9112, 3.2.2).
 */
export function requestPath(target = '/'): string {
  if (!target.startsWith('/') && URL.canParse(target)) return new URL(target).pathname;
  return target.split('?', 1)[0] ?? '/';
}

/** How much of a too-large body is read and thrown away so that its sender gets the 413. */
const MAX_DISCARDED_BYTES = 16 * 1024 * 1024;

/**
 * Reads a JSON request body (at most 1 MiB); undefined when there is none. A larger body is
 * refused (413) without being kept, but the rest of it is still read and thrown away, up to
 * 16 MiB more: a server that stops reading, or closes the connection, while the client is still
 * sending resets it, and the client never sees the 413 it was sent.
 */
export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    /** Answered (read, refused or given up): later events change nothing and build nothing. */
    let settled = false;
    const refuse = () => {
      refused = true;
      settled = true;
      chunks.length = 0;
      reject(Object.assign(new Error('request body too large'), { status: 413 }));
    };
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY_BYTES) refuse();
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (refused) {
        // Past what anyone sends by mistake: no more of our bandwidth for it.
        if (size > MAX_BODY_BYTES + MAX_DISCARDED_BYTES) req.destroy();
        return;
      }
      if (size > MAX_BODY_BYTES) return refuse();
      chunks.push(chunk);
    });
    // The client went away mid-body: its fault, not a failure of ours (and nobody to answer).
    // 'close' too, in case the stream ends with neither 'end' nor 'error' (a no-op once settled).
    const gone = () => {
      // 'close' comes after every request, also one read whole: no error is built for those.
      if (settled) return;
      settled = true;
      reject(Object.assign(new Error('request body was not received'), { status: 400 }));
    };
    req.once('error', gone);
    req.once('close', gone);
    req.once('end', () => {
      if (settled) return;
      settled = true;
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch {
        reject(Object.assign(new Error('request body is not valid JSON'), { status: 400 }));
      }
    });
  });
}

export interface HttpServerOptions {
  logger: Logger;
  routes: Record<string, Route>;
  /** A client must have sent its request headers within this long (slow-header attacks). */
  headersTimeoutMs?: number;
  /** ... and its whole request, body included, within this long (slow-body attacks). */
  requestTimeoutMs?: number;
  /** Whether the request reached us over TLS (then HSTS is sent); e.g. a trusted proxy's word. */
  isSecure?: (req: IncomingMessage) => boolean;
  /** How long idle keep-alive connections stay open after `close()` (default 1 s). */
  idleGraceMs?: number;
}

/** Sent with every response: no MIME sniffing, no framing by other sites, no referrer leaks. */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

/**
 * A plain node:http server with exact-path routes. Every request runs in a request context
 * whose correlation id comes from `x-correlation-id` (when well-formed) or is new, and is
 * echoed in the response. Slow clients are cut off (header and request timeouts).
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const { logger, routes } = options;
  let closing = false;
  /** Set once the idle grace after `close()` has passed: idle connections close at once. */
  let graceOver = false;
  /** Responses not yet finished, to say `Connection: close` on those still to be sent. */
  const inFlight = new Set<ServerResponse>();
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(options.requestTimeoutMs ?? 30_000, headersTimeout),
      // How often timed-out requests are looked for: the timeouts are only as exact as this.
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
    },
    (req, res) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
      if (options.isSecure?.(req))
        res.setHeader('strict-transport-security', 'max-age=31536000; includeSubDomains');
      if (closing) res.setHeader('connection', 'close');
      inFlight.add(res);
      res.once('close', () => inFlight.delete(res));
      // A response that went out before close() without `Connection: close`: its connection
      // goes idle only now, and is closed with the others once the grace is over.
      res.once('finish', () => {
        if (graceOver) setImmediate(() => server.closeIdleConnections());
      });
      const correlationId = newCorrelationId(req.headers['x-correlation-id']?.toString());
      res.setHeader('x-correlation-id', correlationId);
      const path = requestPath(req.url);
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
    },
  );
  server.keepAliveTimeout = 65_000;
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
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      return new Promise((resolve, reject) => {
        // net.Server's close stops accepting (new connections are refused: a client may go
        // elsewhere, nothing was sent); http.Server's would also destroy idle keep-alive
        // connections at once, under a request a client may be writing on one.
        const grace = setTimeout(() => {
          graceOver = true;
          server.closeIdleConnections();
        }, options.idleGraceMs ?? 1_000);
        grace.unref();
        NetServer.prototype.close.call(server, (error?: Error) => {
          clearTimeout(grace);
          if (error) reject(error);
          else resolve();
        });
      });
    },
  };
}
