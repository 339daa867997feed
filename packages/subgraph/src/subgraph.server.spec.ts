import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { depthLimit } from './subgraph.server';

const schema = buildSchema(`
  type Role { id: ID! inherits: [Role!]! }
  type Query { roles: [Role!]! }
`);

function errorsOf(query: string, maxDepth: number): string[] {
  return validate(schema, parse(query), [...specifiedRules, depthLimit(maxDepth)]).map(
    (error) => error.message,
  );
}

const nested = (levels: number) =>
  `{ roles { ${'inherits { '.repeat(levels)}id${' }'.repeat(levels)} } }`;

describe('depthLimit', () => {
  it('serves an operation as deep as the limit', () => {
    expect(errorsOf(nested(3), 5)).toEqual([]);
  });

  it('refuses an operation deeper than the limit, naming both depths', () => {
    expect(errorsOf(nested(4), 5)).toEqual(['Query depth is 6, above the limit of 5']);
  });

  it('measures fragments where they are used', () => {
    const query = `{ roles { ...Deep } } fragment Deep on Role { inherits { inherits { inherits { id } } } }`;
    expect(errorsOf(query, 4)).toEqual(['Query depth is 5, above the limit of 4']);
  });

  it('leaves fragment cycles to the rule that reports them', () => {
    const query = `{ roles { ...A } } fragment A on Role { inherits { ...A } }`;
    expect(errorsOf(query, 40)).toEqual(['Cannot spread fragment "A" within itself.']);
  });
});
