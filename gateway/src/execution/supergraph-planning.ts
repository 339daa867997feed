import { Supergraph, type Schema } from '@apollo/federation-internals';
import { QueryPlanner } from '@apollo/query-planner';
import type { GraphQLSchema } from 'graphql';

/** The supergraph the gateway serves, and its planner: built once, shared by every path. */
export interface SupergraphPlanning {
  readonly supergraphSdl: string;
  /** The API schema (what clients see), as federation's own model, for operations. */
  readonly apiSchema: Schema;
  /** The API schema for graphql-js: validation, variables, introspection. */
  readonly schema: GraphQLSchema;
  /** The whole supergraph for graphql-js: type conditions of entity representations. */
  readonly supergraphSchema: GraphQLSchema;
  readonly planner: QueryPlanner;
  /** Every subgraph's name and the URL the supergraph gives it. */
  readonly subgraphs: readonly { name: string; url: string }[];
}

export function createSupergraphPlanning(supergraphSdl: string): SupergraphPlanning {
  const supergraph = Supergraph.build(supergraphSdl);
  const apiSchema = supergraph.apiSchema();
  return {
    supergraphSdl,
    apiSchema,
    schema: apiSchema.toGraphQLJSSchema(),
    supergraphSchema: supergraph.schema.toGraphQLJSSchema(),
    planner: new QueryPlanner(supergraph),
    subgraphs: supergraph
      .subgraphs()
      .values()
      .map(({ name, url }) => ({ name, url })),
  };
}
