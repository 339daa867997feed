import type {
  GraphQLRequestContext,
  GraphQLRequestContextDidResolveOperation,
} from '@apollo/server';
import { GraphQLError, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  MAX_VARIABLE_DEPTH,
  variableProblemOf,
  wellFormedTextPlugin,
} from './well-formed-text.plugin';

/** The plugin's hook as Apollo Server calls it; resolves with the error it refused with. */
async function refusalOf(query: string, variables?: Record<string, unknown>) {
  const listener = await wellFormedTextPlugin().requestDidStart?.(
    {} as GraphQLRequestContext<object>,
  );
  try {
    await listener?.didResolveOperation?.({
      document: parse(query),
      request: { query, variables },
    } as unknown as GraphQLRequestContextDidResolveOperation<object>);
    return undefined;
  } catch (error) {
    if (error instanceof GraphQLError) return error;
    throw error;
  }
}

/** A value nested `levels` deep: [[[...[1]...]]]. */
function nestedList(levels: number): unknown {
  let value: unknown = 1;
  for (let n = 0; n < levels; n++) value = [value];
  return value;
}

describe('wellFormedTextPlugin', () => {
  it('refuses a NUL written as an escape in a string literal, which the raw text does not show', async () => {
    const error = await refusalOf(
      'mutation { login(email: "a\\u0000@x.com", password: "12345678") { accessToken } }',
    );
    expect(error?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'query',
      http: { status: 400 },
    });
    expect(error?.message).toMatch(/NUL/);
  });

  it('refuses a number literal beyond a double (1e400), in any argument', async () => {
    for (const literal of ['1e400', '-1e400', '9'.repeat(400)]) {
      const error = await refusalOf(`mutation { send(data: { k: ${literal} }) }`);
      expect(error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'query' });
      expect(error?.message).toMatch(/finite number/);
    }
  });

  it('lets ordinary literals through', async () => {
    expect(
      await refusalOf('{ users(first: 20, search: "jos\\u00e9") { totalCount } }'),
    ).toBeUndefined();
    expect(await refusalOf('{ f(x: 1.5e3, y: -0.25, z: "a\\nb") }')).toBeUndefined();
  });

  it('refuses variables nested deeper than the limit, a non-finite number and ill-formed text, naming where', () => {
    expect(variableProblemOf({ d: nestedList(5_000) })).toEqual({
      where: `d${'[0]'.repeat(MAX_VARIABLE_DEPTH)}`,
      problem: `must not nest more than ${MAX_VARIABLE_DEPTH} levels`,
    });
    expect(variableProblemOf({ input: { data: { k: Infinity } } })).toEqual({
      where: 'input.data.k',
      problem: 'must be a finite number',
    });
    expect(variableProblemOf({ input: { email: 'nul\u0000@example.com' } })?.where).toBe(
      'input.email',
    );
    expect(
      variableProblemOf({ d: nestedList(MAX_VARIABLE_DEPTH), n: [1, 2.5, -3] }),
    ).toBeUndefined();
  });

  it('answers a 5,000-level variable with BAD_USER_INPUT, not a stack overflow', async () => {
    const error = await refusalOf('mutation ($d: JSON) { send(data: $d) }', {
      d: nestedList(5_000),
    });
    expect(error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', http: { status: 400 } });
  });
});
