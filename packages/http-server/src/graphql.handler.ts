import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  HeaderMap,
  type ApolloServer,
  type BaseContext,
  type ContextFunction,
} from '@apollo/server';
import { readJsonBody, sendJson } from './http-server';

/** Serves an Apollo Server instance from a node:http route (GET and POST). */
export function createGraphQLHandler<TContext extends BaseContext>(
  apollo: ApolloServer<TContext>,
  context: ContextFunction<[IncomingMessage], TContext>,
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = await readJsonBody(req);
      } catch (error) {
        // Not JSON, too large, or cut off: the client's fault, answered as GraphQL answers
        // any request error (HTTP 4xx, `errors` with the contract's code).
        const status = (error as { status?: number }).status;
        if (status === undefined || status >= 500) throw error;
        sendJson(res, status, {
          errors: [{ message: (error as Error).message, extensions: { code: 'BAD_USER_INPUT' } }],
        });
        return;
      }
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: {
        method: req.method?.toUpperCase() ?? 'GET',
        headers,
        search: url.search,
        body,
      },
      context: () => context(req),
    });
    // Answers are per user: no shared or browser cache keeps them.
    res.setHeader('cache-control', 'no-store');
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
}
