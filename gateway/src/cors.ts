import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '@platform/http-server';

/**
 * CORS for browser frontends: `origins` lists who may call with credentials; `any` echoes
 * every origin (development only).
 */
export function withCors(
  route: Route,
  allowed: { any: boolean; origins: ReadonlySet<string> },
): Route {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const origin = req.headers.origin;
    if (origin && (allowed.any || allowed.origins.has(origin))) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
      res.setHeader(
        'access-control-allow-headers',
        'authorization, content-type, apollo-require-preflight, x-apollo-operation-name, x-correlation-id',
      );
      res.setHeader('access-control-max-age', '600');
      res.writeHead(204).end();
      return;
    }
    await route(req, res);
  };
}
