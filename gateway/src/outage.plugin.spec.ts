import { ApolloServer, HeaderMap } from '@apollo/server';
import { describe, expect, it } from 'vitest';
import { AppError, formatGraphQLError } from '@platform/errors';
import { createLogger } from '@platform/logger';
import type { Identity } from '@platform/tokens';
import { checkAccessToken } from './access/public-operations';
import { DEFAULT_OPERATION_LIMITS } from './limits/operation-cost';
import { operationLimitsPlugin, type Caller } from './limits/operation-limits.plugin';
import { outageStatusPlugin } from './outage.plugin';

/**
 * What a client of the gateway sees (HTTP status, Retry-After, errors) when a dependency is
 * down: Apollo Server with the gateway's token check and outage plugins, over a small schema
 * whose resolvers fail the way subgraph answers do.
 */
const typeDefs = `
  type Query { me: String, profile: String, other: String }
  type Mutation { login: String, send: String, sendElsewhere: String }
`;

const unavailableAnswer = () => AppError.unavailable(new Error('Connection is closed.'), 7);

const resolvers = {
  Query: {
    me: () => 'alice',
    other: () => 'fine',
    // A subgraph's SERVICE_UNAVAILABLE as it reaches the gateway.
    profile: () => {
      throw unavailableAnswer();
    },
  },
  // What the subgraph would be sent: the token only if the gateway kept it.
  Mutation: {
    login: (_: unknown, __: unknown, context: Context) =>
      context.authorization ? 'signed in with a token' : 'signed in',
    send: () => 'sent',
    sendElsewhere: () => {
      throw unavailableAnswer();
    },
  },
};

type Context = Caller;

/** The gateway's admission with a budget that always has room and no ended session. */
const admission = operationLimitsPlugin<Context>({
  limits: DEFAULT_OPERATION_LIMITS,
  budget: {
    charge: async () => ({
      sessionEnded: false,
      checkedAt: Date.now(),
      decision: { allowed: true },
    }),
  },
  publicFields: new Set(['Mutation.login']),
  logger: createLogger({ name: 'outage-test', level: 'silent' }),
});

async function serve(context: Context, query: string) {
  const server = new ApolloServer<Context>({
    typeDefs,
    resolvers,
    plugins: [admission, outageStatusPlugin()],
    formatError: (formatted, error) => formatGraphQLError(formatted, error, () => undefined),
  });
  await server.start();
  try {
    const response = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: {
        method: 'POST',
        headers: new HeaderMap([['content-type', 'application/json']]),
        search: '',
        body: { query },
      },
      context: async () => context,
    });
    const body =
      response.body.kind === 'complete' ? (JSON.parse(response.body.string) as unknown) : undefined;
    return {
      status: response.status ?? 200,
      retryAfter: response.headers.get('retry-after'),
      body: body as { data?: unknown; errors?: { extensions?: Record<string, unknown> }[] },
    };
  } finally {
    await server.stop();
  }
}

/** A token check answering as Redis or the auth service would. */
const verifier = (answer: () => Promise<Identity | null>) => answer;

describe('a token that cannot be checked', () => {
  it('is neither accepted nor refused while Redis is down: 503 SERVICE_UNAVAILABLE and Retry-After', async () => {
    const check = await checkAccessToken(
      verifier(() =>
        Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
      ),
      'Bearer a.b.c',
    );
    expect(check.identity).toBeNull();
    expect(check.tokenRefusal).toBeUndefined();
    const answer = await serve(check, '{ me }');
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe('5');
    expect(answer.body).toEqual({
      errors: [
        {
          message: 'Service temporarily unavailable; try again shortly',
          extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
        },
      ],
    });
  });

  it('is answered the same while the auth service (its keys) cannot be reached', async () => {
    const check = await checkAccessToken(
      verifier(() => Promise.reject(AppError.unavailable(new Error('14 UNAVAILABLE')))),
      'Bearer a.b.c',
    );
    expect((await serve(check, '{ me }')).status).toBe(503);
  });

  it('is dropped for a public operation, which goes on anonymously', async () => {
    const check = await checkAccessToken(
      verifier(() => Promise.reject(new Error('Connection is closed.'))),
      'Bearer a.b.c',
    );
    const answer = await serve(check, 'mutation { login }');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ data: { login: 'signed in' } });
  });

  it('stays a 401 when the token is refused, and a bug stays ours (thrown)', async () => {
    const refused = await checkAccessToken(
      verifier(() => Promise.reject(AppError.tokenRefused('ended'))),
      'Bearer a.b.c',
    );
    expect((await serve(refused, '{ me }')).status).toBe(401);
    await expect(
      checkAccessToken(
        verifier(() => Promise.reject(new TypeError('x is undefined'))),
        'Bearer a.b.c',
      ),
    ).rejects.toMatchObject({ extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  });
});

describe(outageStatusPlugin.name, () => {
  const signedIn: Context = { authorization: 'Bearer a.b.c' };

  it('answers HTTP 503 with Retry-After when an error says SERVICE_UNAVAILABLE, keeping the data', async () => {
    const answer = await serve(signedIn, '{ other profile }');
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe('7');
    expect(answer.body.data).toEqual({ other: 'fine', profile: null });
    expect(answer.body.errors?.[0]?.extensions).toEqual({
      code: 'SERVICE_UNAVAILABLE',
      retryAfter: 7,
    });
  });

  it('keeps 200 for a mutation of which a part took effect, so nothing retries it whole', async () => {
    const answer = await serve(signedIn, 'mutation { send sendElsewhere }');
    expect(answer.status).toBe(200);
    expect(answer.retryAfter).toBeUndefined();
    expect(answer.body.data).toEqual({ send: 'sent', sendElsewhere: null });
    expect(answer.body.errors?.[0]?.extensions?.['code']).toBe('SERVICE_UNAVAILABLE');
  });

  it('answers 503 for a mutation of which nothing took effect', async () => {
    const answer = await serve(signedIn, 'mutation { sendElsewhere }');
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe('7');
  });

  it('leaves other answers alone', async () => {
    const answer = await serve(signedIn, '{ me other }');
    expect(answer.status).toBe(200);
    expect(answer.retryAfter).toBeUndefined();
  });
});
