import { parse } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { INTERNAL_TOKEN_HEADER } from '@platform/grpc';
import { createLogger } from '@platform/logger';
import type { TokenVerifier } from '@platform/tokens';
import { createSubgraph, type Subgraph, type SubgraphContext } from './subgraph.server';
import { requireViewer, viewerIfAny } from './viewer';

/**
 * A subgraph whose token verifier cannot reach Redis: what the gateway gets back. HTTP 200
 * always (the gateway's data source would drop the errors' codes on another status), the
 * fields that need the caller SERVICE_UNAVAILABLE with retryAfter, the others answered.
 */
const internalToken = 'internal-test-token';
const redisDown: Pick<TokenVerifier, 'verifyHeader'> = {
  // As the real verifier: no header is no token (nothing to check); a token needs Redis.
  verifyHeader: (header) =>
    header === undefined
      ? Promise.resolve(null)
      : Promise.reject(new Error('Connection is closed.')),
};

const typeDefs = parse(`
  type Query { me: String, whoami: String, version: String }
`);

let subgraph: Subgraph | undefined;
afterEach(async () => {
  await subgraph?.stop();
  subgraph = undefined;
});

async function start(checkReady?: () => Promise<Record<string, boolean>>) {
  subgraph = createSubgraph<SubgraphContext>({
    name: 'test',
    typeDefs,
    resolvers: {
      Query: {
        me: (_: unknown, __: unknown, context: SubgraphContext) => requireViewer(context).userId,
        // Null for a caller without a token, like the users subgraph's `me`.
        whoami: (_: unknown, __: unknown, context: SubgraphContext) =>
          viewerIfAny(context)?.userId ?? null,
        version: () => '1',
      },
    },
    createContext: (base) => base,
    logger: createLogger({ name: 'subgraph-test', level: 'silent' }),
    tokens: redisDown,
    permissionService: { checkPermissions: async () => ({ allowed: [] }) },
    internalToken,
    ...(checkReady ? { checkReady } : {}),
  });
  return `http://127.0.0.1:${await subgraph.start('127.0.0.1', 0)}`;
}

describe('a subgraph while access tokens cannot be checked', () => {
  it('answers HTTP 200 with SERVICE_UNAVAILABLE where the caller is needed, and the rest', async () => {
    const url = await start();
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer a.b.c',
        [INTERNAL_TOKEN_HEADER]: internalToken,
      },
      body: JSON.stringify({ query: '{ me version }' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      data: { me: null, version: '1' },
      errors: [
        {
          message: 'Service temporarily unavailable; try again shortly',
          path: ['me'],
          locations: [{ line: 1, column: 3 }],
          extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
        },
      ],
    });
  });

  it('does not answer a field that is null for anonymous callers as if a token that cannot be checked was none', async () => {
    const url = await start();
    const ask = (headers: Record<string, string>) =>
      fetch(`${url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [INTERNAL_TOKEN_HEADER]: internalToken,
          ...headers,
        },
        body: JSON.stringify({ query: '{ whoami }' }),
      }).then((response) => response.json());
    // A token was sent and could not be checked: SERVICE_UNAVAILABLE, not "signed out".
    expect(await ask({ authorization: 'Bearer a.b.c' })).toMatchObject({
      data: { whoami: null },
      errors: [{ path: ['whoami'], extensions: { code: 'SERVICE_UNAVAILABLE' } }],
    });
    // No token: null, and no error.
    expect(await ask({})).toEqual({ data: { whoami: null } });
  });

  it('is not ready while a dependency is down, naming it', async () => {
    let redisUp = false;
    const url = await start(async () => ({ redis: redisUp, 'auth-service': true }));
    const down = await fetch(`${url}/ready`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({
      status: 'unavailable',
      down: ['redis'],
      checks: { redis: false, 'auth-service': true },
    });
    redisUp = true;
    expect((await fetch(`${url}/ready`)).status).toBe(200);
  });
});
