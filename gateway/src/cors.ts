import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '@platform/http-server';

/** What browser clients really send: Apollo Client's and urql's headers, W3C trace context. */
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'apollographql-client-name',
  'apollographql-client-version',
  'x-correlation-id',
  'traceparent',
  'tracestate',
].join(', ');

/**
 * CORS for browser frontends: `origins` lists who may call with credentials; `any` echoes
 * every origin (development only), never the opaque `null` origin of sandboxed frames and
 * `file:` pages, which any site can produce.
 */
export function withCors(
  route: Route,
  allowed: { any: boolean; origins: ReadonlySet<string> },
): Route {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const origin = req.headers.origin;
    res.setHeader('vary', 'Origin');
    if (origin && origin !== 'null' && (allowed.any || allowed.origins.has(origin))) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('access-control-expose-headers', 'x-correlation-id');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
      res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
      res.setHeader('access-control-max-age', '600');
      res.writeHead(204).end();
      return;
    }
    await route(req, res);
  };
}
