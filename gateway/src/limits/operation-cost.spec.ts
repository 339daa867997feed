import {
  buildSchema,
  getIntrospectionQuery,
  getOperationAST,
  parse,
  validate,
  type OperationDefinitionNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  checkOperation,
  exceededLimit,
  measureOperation,
  queryTooComplex,
  textNesting,
  DEFAULT_OPERATION_LIMITS,
  MAX_TEXT_NESTING,
  type OperationLimits,
} from './operation-cost';
import { fragmentsOf } from '../operation-document';

// The shapes of the public API that matter here (see /docs/schema.graphql).
const schema = buildSchema(`
  type PageInfo { hasNextPage: Boolean! endCursor: String }
  type User {
    id: ID!
    email: String!
    roles: [RoleAssignment!]!
    permissions(scope: String): [String!]!
    notifications(first: Int = 20, after: String): NotificationConnection!
  }
  type UserEdge { cursor: String! node: User! }
  type UserConnection { edges: [UserEdge!]! pageInfo: PageInfo! totalCount: Int! }
  type Role { id: ID! name: String! inherits: [Role!]! }
  type RoleAssignment { role: Role! scope: String }
  type Notification { id: ID! title: String! recipient: User! }
  type NotificationEdge { cursor: String! node: Notification! }
  type NotificationConnection {
    edges: [NotificationEdge!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }
  type Query {
    me: User
    users(first: Int = 20, after: String): UserConnection!
    roles: [Role!]!
    hasPermission(permission: String!, scope: String): Boolean!
    unpaged(first: Int): UserConnection!
  }
  type Subscription { notificationAdded: Notification! }
`);

const limits: OperationLimits = DEFAULT_OPERATION_LIMITS;

function measure(query: string, variables: Record<string, unknown> = {}) {
  const document = parse(query);
  expect(validate(schema, document)).toEqual([]);
  const operation = getOperationAST(document) as OperationDefinitionNode;
  return measureOperation(schema, operation, fragmentsOf(document), variables, limits);
}

/** `notifications(first: 100) { edges { node { recipient { ... } } } }`, `levels` deep. */
function notificationChain(levels: number): string {
  let inner = 'id';
  for (let level = 0; level < levels; level++)
    inner = `notifications(first: 100) { edges { node { recipient { ${inner} } } } }`;
  return inner;
}

/** The reported query: the chain of notifications under `me`. */
const nestedNotifications = (levels: number) => `{ me { ${notificationChain(levels)} } }`;

describe('measureOperation', () => {
  it('counts a page of a connection as its page size', () => {
    expect(measure('{ me { notifications(first: 20) { edges { node { id } } } } }')).toEqual({
      depth: 3,
      fields: 5,
      rootFields: 1,
      nodes: 20,
    });
  });

  it('multiplies the page sizes of nested connections', () => {
    const cost = measure(
      '{ users(first: 50) { edges { node { notifications(first: 10) { edges { node { id } } } } } } }',
    );
    expect(cost.nodes).toBe(50 + 50 * 10);
  });

  it('measures the reported five levels of notifications at ten billion objects', () => {
    const cost = measure(nestedNotifications(5));
    expect(cost.nodes).toBe(100 + 100 ** 2 + 100 ** 3 + 100 ** 4 + 100 ** 5);
    expect(exceededLimit(cost, limits)).toEqual({
      reason: 'NODES',
      limit: 10_000,
      measured: 10_101_010_100,
    });
  });

  it("takes the argument's default, then the assumed page size, when first is absent", () => {
    expect(measure('{ users { edges { node { id } } } }').nodes).toBe(20);
    expect(measure('{ unpaged { edges { node { id } } } }').nodes).toBe(100);
  });

  it('reads first from variables, then from their defaults', () => {
    const query = 'query ($n: Int = 7) { users(first: $n) { edges { node { id } } } }';
    expect(measure(query, { n: 40 }).nodes).toBe(40);
    expect(measure(query).nodes).toBe(7);
  });

  it('does not take as a size a variable an Int cannot hold (the gateway refuses it as bad input)', () => {
    const query = 'query ($n: Int) { users(first: $n) { edges { node { id } } } }';
    for (const n of [2 ** 31, 1e10, 2.5]) expect(measure(query, { n }).nodes).toBe(20);
    expect(measure(query, { n: 2 ** 31 - 1 }).nodes).toBe(2 ** 31 - 1);
  });

  it('counts a list without first as the assumed list size, multiplied like a page', () => {
    const cost = measure(
      '{ users(first: 5) { edges { node { roles { role { inherits { id } } } } } } }',
    );
    expect(cost.nodes).toBe(5 + 5 * 10 + 5 * 10 * 10);
  });

  it('does not count lists of scalars as objects', () => {
    expect(measure('{ me { permissions } }').nodes).toBe(0);
  });

  it('counts a field below the root given arguments once per alias, times the lists above it', () => {
    const scopes = (n: number) =>
      Array.from({ length: n }, (_, i) => `p${i}: permissions(scope: "s${i}")`).join(' ');
    expect(measure(`{ me { ${scopes(480)} } }`).nodes).toBe(480);
    // An admin's page of users, each asked for 100 scopes: over the node limit.
    expect(measure(`{ users(first: 100) { edges { node { ${scopes(100)} } } } }`).nodes).toBe(
      100 + 100 * 100,
    );
    // Root fields given arguments are counted as root fields, not as nodes.
    expect(measure('{ hasPermission(permission: "audit:read", scope: "s") }').nodes).toBe(0);
  });

  it("does not count a connection's edges and node as levels of depth", () => {
    expect(measure('{ me { id } }').depth).toBe(2);
    expect(measure(nestedNotifications(1)).depth).toBe(4);
    expect(measure(nestedNotifications(5)).depth).toBe(12);
    expect(measure('{ me { notifications { pageInfo { hasNextPage } } } }').depth).toBe(4);
  });

  it('counts every alias as a field and as a root field', () => {
    const aliases = Array.from(
      { length: 500 },
      (_, n) => `p${n}: hasPermission(permission: "users:read")`,
    );
    const cost = measure(`{ ${aliases.join(' ')} }`);
    expect(cost).toMatchObject({ fields: 500, rootFields: 500, nodes: 0 });
    expect(exceededLimit(cost, limits)).toEqual({
      reason: 'ROOT_FIELDS',
      limit: 20,
      measured: 500,
    });
  });

  it('does not count __typename as a root field', () => {
    expect(measure('{ __typename me { id } }')).toMatchObject({ fields: 3, rootFields: 1 });
  });

  it('counts a fragment once per use, with the multiplier of the place it is used', () => {
    const cost = measure(`
      { me { ...Inbox } users(first: 3) { edges { node { ...Inbox } } } }
      fragment Inbox on User { notifications(first: 10) { edges { node { id title } } } }
    `);
    expect(cost.fields).toBe(1 + 5 + 3 + 5);
    expect(cost.nodes).toBe(10 + 3 + 3 * 10);
  });

  it('measures a fragment spread directly under a connection as part of that connection', () => {
    const cost = measure(`
      { me { notifications(first: 30) { ...Page } } }
      fragment Page on NotificationConnection { edges { node { id } } totalCount }
    `);
    expect(cost).toMatchObject({ nodes: 30, depth: 3 });
  });

  it('counts inline fragments like the selections around them', () => {
    expect(
      measure('{ me { ... on User { notifications(first: 4) { edges { node { id } } } } } }'),
    ).toMatchObject({ nodes: 4, fields: 5, depth: 3 });
  });

  it('measures an exponential fragment expansion without expanding it', () => {
    // Each fragment uses the one below it twice: 2^30 uses of the last one.
    const fragments = Array.from(
      { length: 30 },
      (_, n) => `fragment F${n} on User { ...F${n + 1} ...F${n + 1} }`,
    );
    const query = `{ me { ...F0 } } ${fragments.join(' ')} fragment F30 on User { id }`;
    // Expanding it would visit a billion selections (minutes); measuring it takes a moment,
    // on however busy a machine.
    const started = performance.now();
    const cost = measure(query);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(cost.fields).toBe(1 + 2 ** 30);
    expect(exceededLimit(cost, limits)?.reason).toBe('FIELDS');
  });

  it('counts introspection as one field, answered without a subgraph', () => {
    const cost = measure(
      getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }),
    );
    expect(cost).toEqual({ depth: 1, fields: 1, rootFields: 1, nodes: 0 });
  });

  it('measures a subscription by its selection', () => {
    const cost = measure(
      `subscription { notificationAdded { recipient { ${notificationChain(2)} } } }`,
    );
    expect(cost.nodes).toBe(100 + 100 * 100);
  });

  it('counts deep nesting without connections level by level', () => {
    const query = `{ roles { ${'inherits { '.repeat(12)}id${' }'.repeat(12)} } }`;
    const cost = measure(query);
    expect(cost.depth).toBe(14);
    expect(exceededLimit(cost, { ...limits, maxNodes: Infinity })).toEqual({
      reason: 'DEPTH',
      limit: 12,
      measured: 14,
    });
  });
});

describe('checkOperation', () => {
  it('accepts a page of the inbox under the default limits', () => {
    const document = parse('{ me { notifications(first: 20) { edges { node { id } } } } }');
    const { exceeded } = checkOperation(
      schema,
      document,
      getOperationAST(document)!,
      undefined,
      limits,
    );
    expect(exceeded).toBeUndefined();
  });

  it('measures only the operation that runs', () => {
    const document = parse(`query Small { me { id } } query Big ${nestedNotifications(3)}`);
    const check = (name: string) =>
      checkOperation(schema, document, getOperationAST(document, name)!, undefined, limits)
        .exceeded;
    expect(check('Small')).toBeUndefined();
    expect(check('Big')?.reason).toBe('NODES');
  });
});

describe('queryTooComplex', () => {
  it('names the limit and the measured value, with HTTP 400', () => {
    const error = queryTooComplex({ reason: 'NODES', limit: 10_000, measured: 10_101_010_100 });
    expect(error.message).toBe(
      'Estimated number of objects (list sizes multiplied down the tree) is 10,101,010,100, above the limit of 10,000',
    );
    expect(error.extensions).toEqual({
      code: 'QUERY_TOO_COMPLEX',
      reason: 'NODES',
      limit: 10_000,
      measured: 10_101_010_100,
      http: { status: 400 },
    });
  });
});

describe('textNesting', () => {
  it('measures the deepest bracket nesting, skipping strings, block strings and comments', () => {
    expect(textNesting('{ me { id } }')).toBe(2);
    expect(textNesting('{ f(a: [[1]], b: { c: 2 }) }')).toBe(4);
    expect(textNesting('{ f(a: "{{{[[[(((") }')).toBe(2);
    expect(textNesting('{ f(a: "\\"{{{") }')).toBe(2);
    expect(textNesting('{ f(a: """ {{{ \\""" [[[ """) }')).toBe(2);
    expect(textNesting('# {{{{{{\n{ id }')).toBe(1);
    expect(textNesting(`{${'me{'.repeat(3_000)}id${'}'.repeat(3_001)}`)).toBe(3_001);
  });

  it('allows far more nesting than the depth limit needs', () => {
    expect(MAX_TEXT_NESTING).toBeGreaterThan(DEFAULT_OPERATION_LIMITS.maxDepth * 3 + 32);
  });
});
