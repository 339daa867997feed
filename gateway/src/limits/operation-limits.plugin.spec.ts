import type {
  GraphQLRequestContext,
  GraphQLRequestContextDidResolveOperation,
} from '@apollo/server';
import { buildSchema, getOperationAST, GraphQLError, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { AppError } from '@platform/errors';
import { createLogger } from '@platform/logger';
import { DEFAULT_OPERATION_LIMITS, type OperationLimits } from './operation-cost';
import { operationLimitsPlugin, type Caller } from './operation-limits.plugin';
import type { RequestBudget } from './request-budget';

const schema = buildSchema(`
  type Item { id: ID! children(first: Int = 10): ItemConnection! }
  type ItemEdge { node: Item! }
  type ItemConnection { edges: [ItemEdge!]! }
  type Query { item: Item hasPermission(permission: String!): Boolean! }
`);

const limits: OperationLimits = DEFAULT_OPERATION_LIMITS;

/**
 * An in-memory budget of `points` per caller that never refills, charging a live session's user
 * or else the address, as the Redis one does; `ended` holds the ended sessions.
 */
function fixedBudget(
  points: number,
  ended: ReadonlySet<string> = new Set(),
): RequestBudget & { charged: Map<string, number> } {
  const charged = new Map<string, number>();
  return {
    charged,
    async charge({ session, clientAddress }, cost) {
      const sessionEnded = session ? ended.has(session.sessionId) : false;
      const key =
        session && !sessionEnded && session.expiresAt > Date.now()
          ? `user:${session.userId}`
          : `address:${clientAddress ?? 'unknown'}`;
      const spent = (charged.get(key) ?? 0) + cost;
      const checkedAt = Date.now();
      if (spent > points)
        return { sessionEnded, checkedAt, decision: { allowed: false, retryAfter: 7 } };
      charged.set(key, spent);
      return { sessionEnded, checkedAt, decision: { allowed: true } };
    },
  };
}

/** A caller with a genuine token of `userId`'s session `sessionId`, expiring in a minute. */
const withToken = (userId: string, sessionId = `${userId}-session`): Caller => ({
  authorization: 'Bearer a.b.c',
  clientAddress: '203.0.113.9',
  session: { userId, sessionId, expiresAt: Date.now() + 60_000 },
});

const logger = createLogger({ name: 'limits-test', level: 'silent' });

/**
 * The plugin's hook as Apollo Server calls it once the operation is resolved (Apollo runs
 * the operation only if this returns). Resolves with the error it refused with, if any.
 */
function serve(budget: RequestBudget) {
  const publicFields = new Set(['Query.hasPermission']);
  const plugin = operationLimitsPlugin<Caller>({ limits, budget, publicFields, logger });
  return async (query: string, caller: Caller = withToken('u1')) => {
    const document = parse(query);
    expect(validate(schema, document)).toEqual([]);
    const listener = await plugin.requestDidStart?.({} as GraphQLRequestContext<Caller>);
    try {
      await listener?.didResolveOperation?.({
        schema,
        document,
        operation: getOperationAST(document)!,
        request: { query },
        contextValue: caller,
      } as unknown as GraphQLRequestContextDidResolveOperation<Caller>);
      return undefined;
    } catch (error) {
      if (error instanceof GraphQLError) return error;
      throw error;
    }
  };
}

function nested(levels: number, first = 100): string {
  let inner = 'id';
  for (let n = 0; n < levels; n++)
    inner = `children(first: ${first}) { edges { node { ${inner} } } }`;
  return `{ item { ${inner} } }`;
}

describe(operationLimitsPlugin.name, () => {
  it('refuses an operation above a limit with HTTP 400, without charging the budget', async () => {
    const budget = fixedBudget(1_000_000);
    const error = await serve(budget)(nested(3));
    expect(error?.message).toMatch(/is 1,010,100, above the limit of 10,000/);
    expect(error?.extensions).toEqual({
      code: 'QUERY_TOO_COMPLEX',
      reason: 'NODES',
      limit: 10_000,
      measured: 100 + 100 ** 2 + 100 ** 3,
      http: { status: 400 },
    });
    expect(budget.charged.size).toBe(0);
  });

  it('refuses 500 aliases of one root field', async () => {
    const aliases = Array.from({ length: 500 }, (_, n) => `a${n}: hasPermission(permission: "x")`);
    const error = await serve(fixedBudget(1_000_000))(`{ ${aliases.join(' ')} }`);
    expect(error?.extensions).toMatchObject({
      code: 'QUERY_TOO_COMPLEX',
      reason: 'ROOT_FIELDS',
      limit: 20,
      measured: 500,
    });
  });

  it('lets an operation within the limits run and charges its cost to the caller', async () => {
    const budget = fixedBudget(1_000_000);
    expect(await serve(budget)(nested(2, 50))).toBeUndefined();
    expect(budget.charged.get('user:u1')).toBe(1 + 50 + 50 * 50);
  });

  it('refuses a caller whose budget is used up with HTTP 429 and Retry-After, and serves others', async () => {
    const run = serve(fixedBudget(250));
    expect(await run(nested(1))).toBeUndefined();
    expect(await run(nested(1))).toBeUndefined();
    const refused = await run(nested(1));
    expect(refused?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      retryAfter: 7,
      http: { status: 429 },
    });
    const http = refused?.extensions['http'] as { headers: Map<string, string> };
    expect(http.headers.get('retry-after')).toBe('7');
    expect(await run(nested(1), withToken('u2'))).toBeUndefined();
  });

  it('refuses with HTTP 503, Retry-After and SERVICE_UNAVAILABLE while the budget cannot be charged', async () => {
    const unreachable: RequestBudget = {
      charge: () =>
        Promise.reject(
          AppError.unavailable(
            new Error("Stream isn't writeable and enableOfflineQueue options is false"),
          ),
        ),
    };
    const refused = await serve(unreachable)('{ item { id } }');
    expect(refused?.message).toBe('Service temporarily unavailable; try again shortly');
    expect(refused?.extensions).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      retryAfter: 5,
      http: { status: 503 },
    });
    const http = refused?.extensions['http'] as { headers: Map<string, string> };
    expect(http.headers.get('retry-after')).toBe('5');
  });

  it('charges anonymous callers by their address', async () => {
    const budget = fixedBudget(1_000);
    await serve(budget)('{ item { id } }', { clientAddress: '203.0.113.9' });
    expect(budget.charged.get('address:203.0.113.9')).toBe(1);
  });

  describe('the token, settled after its session was checked with the charge', () => {
    it('accepts a live session: the caller is its user, who pays, and the token is forwarded', async () => {
      const budget = fixedBudget(1_000);
      const caller = withToken('u7');
      expect(await serve(budget)('{ item { id } }', caller)).toBeUndefined();
      expect(caller.userId).toBe('u7');
      expect(caller.authorization).toBe('Bearer a.b.c');
      expect([...budget.charged.keys()]).toEqual(['user:u7']);
    });

    it('refuses a token of an ended session with 401 SESSION_ENDED, charging its address', async () => {
      const budget = fixedBudget(1_000, new Set(['u7-session']));
      const caller = withToken('u7');
      const refused = await serve(budget)('{ item { id } }', caller);
      expect(refused?.extensions).toMatchObject({
        code: 'UNAUTHENTICATED',
        reason: 'SESSION_ENDED',
        http: { status: 401 },
      });
      expect(caller.userId).toBeUndefined();
      expect([...budget.charged.keys()]).toEqual(['address:203.0.113.9']);
    });

    it('says SESSION_ENDED, not TOKEN_EXPIRED, for an expired token of an ended session', async () => {
      const caller = {
        ...withToken('u7'),
        session: { userId: 'u7', sessionId: 's', expiresAt: 1 },
      };
      const refused = await serve(fixedBudget(1_000, new Set(['s'])))('{ item { id } }', caller);
      expect(refused?.extensions).toMatchObject({ reason: 'SESSION_ENDED' });
      const expired = {
        ...withToken('u8'),
        session: { userId: 'u8', sessionId: 't', expiresAt: 1 },
      };
      const answer = await serve(fixedBudget(1_000))('{ item { id } }', expired);
      expect(answer?.extensions).toMatchObject({
        code: 'UNAUTHENTICATED',
        reason: 'TOKEN_EXPIRED',
      });
      expect(expired.userId).toBeUndefined();
    });

    it('lets a public operation go on anonymously, without the refused token', async () => {
      const budget = fixedBudget(1_000, new Set(['u7-session']));
      const caller = withToken('u7');
      expect(await serve(budget)('{ hasPermission(permission: "x") }', caller)).toBeUndefined();
      expect(caller.userId).toBeUndefined();
      expect(caller.authorization).toBeUndefined();
      expect([...budget.charged.keys()]).toEqual(['address:203.0.113.9']);
    });

    it('refuses a revoked token before its budget: 401 even when the address has none left', async () => {
      const caller = withToken('u7');
      const refused = await serve(fixedBudget(0, new Set(['u7-session'])))(
        '{ item { id } }',
        caller,
      );
      expect(refused?.extensions).toMatchObject({ reason: 'SESSION_ENDED' });
    });

    it('neither accepts nor refuses a token whose session could not be checked: anonymous for a public operation, 503 otherwise', async () => {
      const unchecked: RequestBudget = {
        charge: async () => ({
          sessionEnded: false,
          sessionUnchecked: AppError.unavailable(new Error('14 UNAVAILABLE')),
          checkedAt: Date.now(),
          decision: { allowed: true },
        }),
      };
      const signingIn = withToken('u7');
      expect(
        await serve(unchecked)('{ hasPermission(permission: "x") }', signingIn),
      ).toBeUndefined();
      expect([signingIn.userId, signingIn.authorization]).toEqual([undefined, undefined]);
      const other = withToken('u7');
      const refused = await serve(unchecked)('{ item { id } }', other);
      expect(refused?.extensions).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        http: { status: 503 },
      });
      expect(other.userId).toBeUndefined();
    });
  });
});
