import { createHash } from 'node:crypto';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, LocalGraphQLDataSource, type GraphQLDataSource } from '@apollo/gateway';
import type {
  GatewayExecutionResult,
  GatewayGraphQLRequestContext,
} from '@apollo/server-gateway-interface';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { GraphQLError, parse, type DocumentNode } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { FederationGateway } from './federation-gateway';
import { createSupergraphPlanning } from './supergraph-planning';

// Two small subgraphs, run in process (real subgraph schemas executing the plans' fetches),
// with what the gateway must get right: entities across subgraphs, abstract types, enums,
// non-null fields that a failing subgraph leaves null, aliases, fragments, directives.
const usersTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Query {
    me: User
    users(first: Int = 3): [User!]!
    node(id: ID!): Node
    search(term: String): [SearchResult!]
  }
  interface Node { id: ID! }
  type User implements Node @key(fields: "id") { id: ID! email: String! status: Status age: Int }
  type Group implements Node { id: ID! name: String members: [User] }
  union SearchResult = User | Group
  enum Status { ACTIVE DISABLED }
  type Mutation { rename(id: ID!, email: String!): User }
`);
const rbacTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type User @key(fields: "id") { id: ID! roles(prefix: String): [Role!]! primaryRole: Role }
  type Role { name: String! level: Int }
`);

interface UserRow {
  id: string;
  email: string | null;
  status: string;
  age: number | null;
}
const users: UserRow[] = [
  { id: 'u1', email: 'a@example.com', status: 'ACTIVE', age: 30 },
  { id: 'u2', email: 'b@example.com', status: 'DISABLED', age: null },
  { id: 'u3', email: 'c@example.com', status: 'ACTIVE', age: 41 },
];
/** Faults of the rbac subgraph, per user id: an error, a null for roles, or down entirely. */
interface Faults {
  rbacDown: boolean;
  byUser: Record<string, 'error' | 'null-roles'>;
  badEmail: boolean;
  /** Changes a subgraph's answer after its own checks: values the gateway must catch. */
  corrupt: ((service: string, data: Record<string, unknown>) => void) | undefined;
}
const noFaults = (): Faults => ({
  rbacDown: false,
  byUser: {},
  badEmail: false,
  corrupt: undefined,
});
const faults = noFaults();

const usersSubgraph = buildSubgraphSchema({
  typeDefs: usersTypeDefs,
  resolvers: {
    Query: {
      me: () => users[0],
      users: (_: unknown, { first }: { first: number }) => users.slice(0, first),
      node: (_: unknown, { id }: { id: string }) =>
        id === 'g1'
          ? { __typename: 'Group', id: 'g1', name: 'Admins', members: [users[0], null] }
          : users.find((user) => user.id === id),
      search: () => [
        { __typename: 'Group', id: 'g1', name: 'Admins', members: [] },
        { ...users[1], __typename: 'User' },
      ],
    },
    User: {
      __resolveReference: ({ id }: { id: string }) => users.find((user) => user.id === id),
      email: (user: UserRow) => (faults.badEmail && user.id === 'u2' ? null : user.email),
    },
    Node: { __resolveType: (node: { __typename?: string }) => node.__typename ?? 'User' },
    SearchResult: { __resolveType: (node: { __typename: string }) => node.__typename },
    Mutation: {
      rename: (_: unknown, { id, email }: { id: string; email: string }) => ({
        ...users.find((user) => user.id === id),
        email,
      }),
    },
  },
});
const rbacSubgraph = buildSubgraphSchema({
  typeDefs: rbacTypeDefs,
  resolvers: {
    User: {
      __resolveReference: ({ id }: { id: string }) => {
        if (faults.byUser[id] === 'error')
          throw new GraphQLError(`no roles for ${id}`, {
            extensions: { code: 'FORBIDDEN' },
          });
        return { id };
      },
      roles: ({ id }: { id: string }, { prefix }: { prefix?: string | null }) =>
        faults.byUser[id] === 'null-roles'
          ? null
          : [
              { name: `${id}-reader`, level: 1 },
              { name: `${id}-writer`, level: null },
            ].filter((role) => !prefix || role.name.startsWith(prefix)),
      primaryRole: ({ id }: { id: string }) => (id === 'u2' ? null : { name: 'main', level: 3 }),
    },
  },
});

class Subgraph extends LocalGraphQLDataSource {
  constructor(
    private readonly name: string,
    schema: ConstructorParameters<typeof LocalGraphQLDataSource>[0],
  ) {
    super(schema);
  }

  override async process(options: Parameters<LocalGraphQLDataSource['process']>[0]) {
    if (faults.rbacDown && this.name === 'rbac') throw new Error('connect ECONNREFUSED rbac');
    const response = await super.process(options);
    if (response.data) faults.corrupt?.(this.name, response.data);
    return response;
  }
}

const supergraphSdl = (() => {
  const result = composeServices([
    { name: 'users', url: 'http://users.invalid/graphql', typeDefs: usersTypeDefs },
    { name: 'rbac', url: 'http://rbac.invalid/graphql', typeDefs: rbacTypeDefs },
  ]);
  if (result.errors) throw new Error(result.errors.map((error) => error.message).join('\n'));
  return result.supergraphSdl;
})();
const dataSources = new Map<string, GraphQLDataSource>([
  ['users', new Subgraph('users', usersSubgraph)],
  ['rbac', new Subgraph('rbac', rbacSubgraph)],
]);

type Executor = (context: GatewayGraphQLRequestContext) => Promise<GatewayExecutionResult>;
let ours: Executor;
let stock: Executor;
const documents = new Map<string, DocumentNode>();

beforeAll(async () => {
  ({ executor: ours } = await new FederationGateway({
    planning: createSupergraphPlanning(supergraphSdl),
    dataSources,
  }).load());
  const apollo = new ApolloGateway({
    supergraphSdl,
    buildService: ({ name }) => dataSources.get(name)!,
  });
  ({ executor: stock } = (await apollo.load()) as { executor: Executor });
});

/** What a client receives of a result: JSON, with errors' message, path and extensions. */
function asClientSees(result: GatewayExecutionResult) {
  return JSON.parse(
    JSON.stringify({
      ...result,
      errors: result.errors?.map((error) => ({
        message: error.message,
        path: error.path,
        extensions: error.extensions,
      })),
    }),
  ) as unknown;
}

async function run(
  executor: Executor,
  query: string,
  variables?: Record<string, unknown>,
  operationName?: string,
) {
  // Apollo Server hands over one document per text (its document cache), with the text's hash.
  let document = documents.get(query);
  if (!document) documents.set(query, (document = parse(query)));
  const context = {
    request: { query, variables, operationName },
    document,
    queryHash: createHash('sha256').update(query).digest('hex'),
    operationName: operationName ?? null,
    context: {},
    logger: console,
    metrics: {},
    cache: undefined,
    overallCachePolicy: undefined,
  } as unknown as GatewayGraphQLRequestContext;
  return asClientSees(await executor(context));
}

const cases: {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  faults?: Partial<Faults>;
}[] = [
  { name: 'one fetch', query: '{ me { id email status } }' },
  {
    name: 'entities from a second subgraph, aliases and __typename',
    query:
      '{ people: users { key: id __typename kind: __typename roles { name level } primaryRole { name } } }',
  },
  {
    name: 'argument defaults and variables, named operation among several',
    query: 'query A($n: Int) { users(first: $n) { id } } query B { me { id } }',
    variables: { n: 2 },
    operationName: 'A',
  },
  {
    name: 'aliases that are names of JavaScript object properties',
    query: `{ constructor: me { toString: id hasOwnProperty: email valueOf: __typename }
      isPrototypeOf: users(first: 1) { constructor: id } }`,
  },
  { name: 'a __proto__ alias', query: '{ me { __proto__: status id } }' },
  {
    name: 'skip and include, with variables, literals and defaults',
    query: `query ($with: Boolean!, $without: Boolean = true) {
      me { id email @include(if: $with) age @skip(if: $without) status @skip(if: false)
        roles @include(if: $with) { name } }
    }`,
    variables: { with: false },
  },
  {
    name: 'interfaces, unions, inline and named fragments',
    query: `fragment U on User { email roles { name } }
      { node(id: "g1") { id ... on Group { name members { id ...U } } }
        search { __typename ... on User { id ...U } ... on Group { id name } ... on Node { id } } }`,
  },
  {
    name: 'an entity fetch error, with its path in the client’s result',
    query: '{ users { id roles { name } } }',
    faults: { byUser: { u2: 'error' } },
  },
  {
    name: 'a null in a non-null field, bubbled to the nearest nullable parent',
    query: '{ users { id roles { name } } me { id primaryRole { name } } }',
    faults: { byUser: { u1: 'null-roles' } },
  },
  {
    name: 'a null in a non-null field under a nullable parent: only that parent is null',
    query: `{ me { id roles { name } } node(id: "u3") { id ... on User { email roles { name } } }
      search { ... on User { id roles { name } } } }`,
    faults: { byUser: { u1: 'null-roles', u2: 'error' } },
  },
  {
    name: 'a value not in the API schema (no subgraph error): null, and valueCompletion',
    query: '{ users { id status } me { status email } }',
    faults: {
      corrupt: (service, data) => {
        if (service !== 'users') return;
        const list = data['users'] as { status: string }[] | undefined;
        if (list?.[1]) list[1].status = 'GONE';
        const me = data['me'] as { email: unknown } | undefined;
        if (me) me.email = 12;
      },
    },
  },
  {
    name: 'entities missing a non-null field without an error: bubbled, and valueCompletion',
    query: '{ me { id roles { name } } users { id primaryRole { name level } } }',
    faults: {
      corrupt: (service, data) => {
        if (service !== 'rbac') return;
        const entities = data['_entities'] as Record<string, unknown>[] | undefined;
        if (entities?.[0]) delete entities[0]['roles'];
        const role = entities?.[2]?.['primaryRole'] as Record<string, unknown> | undefined;
        if (role) role['level'] = 'high';
      },
    },
  },
  {
    name: 'a subgraph down: its fields null, the rest answered, the failure reported',
    query: '{ me { id email primaryRole { name } } users { id roles { name } } }',
    faults: { rbacDown: true },
  },
  {
    name: 'a subgraph down under nullable parents',
    query:
      '{ me { id email primaryRole { name } } node(id: "u2") { id ... on User { primaryRole { name } } } }',
    faults: { rbacDown: true },
  },
  {
    name: 'a subgraph’s own null in a non-null field',
    query: '{ users { id email } node(id: "u2") { ... on User { email } } }',
    faults: { badEmail: true },
  },
  {
    name: 'a mutation, and the root __typename',
    query:
      'mutation { __typename rename(id: "u3", email: "z@example.com") { id email roles { name } } }',
  },
  {
    name: 'introspection beside data',
    query: '{ __type(name: "Status") { name enumValues { name } } me { id } }',
  },
  {
    name: 'a bad variable',
    query: 'query ($n: Int) { users(first: $n) { id } }',
    variables: { n: 'many' },
  },
];

describe('FederationGateway', () => {
  for (const testCase of cases)
    it(`answers as stock @apollo/gateway does: ${testCase.name}`, async () => {
      Object.assign(faults, noFaults(), testCase.faults);
      try {
        // Twice: the second answer comes from what the first prepared.
        for (let round = 0; round < 2; round++) {
          const expected = await run(
            stock,
            testCase.query,
            testCase.variables,
            testCase.operationName,
          );
          const actual = await run(
            ours,
            testCase.query,
            testCase.variables,
            testCase.operationName,
          );
          expect(actual).toEqual(expected);
        }
      } finally {
        Object.assign(faults, noFaults());
      }
    });

  it('answers with data, not only what stock would (the comparison is not of two empty answers)', async () => {
    expect(await run(ours, '{ users(first: 2) { id roles { name } } }')).toEqual({
      data: {
        users: [
          { id: 'u1', roles: [{ name: 'u1-reader' }, { name: 'u1-writer' }] },
          { id: 'u2', roles: [{ name: 'u2-reader' }, { name: 'u2-writer' }] },
        ],
      },
    });
  });

  // Where the gateway answers better than stock (which fails these with an internal error or
  // drops data): compared with what a GraphQL server must answer, not with stock.
  it('refuses a null `if` for @skip / @include as the client’s fault, wherever the field is planned', async () => {
    for (const query of [
      'query ($i: Boolean = true) { me @include(if: $i) { id } }',
      'query ($i: Boolean = true) { me { id email @include(if: $i) } }',
      'query ($s: Boolean = false) { me { id roles @skip(if: $s) { name } } }',
      'query ($s: Boolean = false) { ...F } fragment F on Query { me { id @skip(if: $s) } }',
    ]) {
      const answer = (await run(ours, query, { i: null, s: null })) as {
        data?: unknown;
        errors?: { message: string; extensions: { code: string } }[];
      };
      expect(answer.data, query).toBeUndefined();
      expect(answer.errors?.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
      expect(answer.errors?.[0]?.message).toMatch(/Variable "\$[is]" .* must not be null/);
    }
    // Not null: answered.
    expect(
      await run(ours, 'query ($i: Boolean = true) { me @include(if: $i) { id } }', { i: false }),
    ).toEqual({ data: {} });
  });

  it('refuses $representations only where an entity fetch needs the name, and says so', async () => {
    const answer = (await run(
      ours,
      'query ($representations: String) { me { id roles(prefix: $representations) { name } } }',
      { representations: 'u1-r' },
    )) as { errors?: { message: string; extensions: { code: string } }[] };
    expect(answer.errors?.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
    expect(answer.errors?.[0]?.message).toMatch(/"\$representations" .* use another name/);
    expect(
      await run(ours, 'query ($representations: Int) { users(first: $representations) { id } }', {
        representations: 1,
      }),
    ).toEqual({ data: { users: [{ id: 'u1' }] } });
    expect(
      await run(ours, 'query ($p: String) { me { roles(prefix: $p) { name } } }', { p: 'u1-r' }),
    ).toEqual({ data: { me: { roles: [{ name: 'u1-reader' }] } } });
  });

  it('merges introspection fields selected twice under one name', async () => {
    expect(
      await run(
        ours,
        '{ t: __type(name: "User") { name } ...F } fragment F on Query { t: __type(name: "User") { kind } }',
      ),
    ).toEqual({ data: { t: { name: 'User', kind: 'OBJECT' } } });
  });
});
