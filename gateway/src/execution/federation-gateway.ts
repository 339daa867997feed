import { buildOperationContext, type GraphQLDataSource } from '@apollo/gateway';
import {
  assert,
  operationFromDocument,
  type FieldSelection,
  type Operation,
} from '@apollo/federation-internals';
import type { QueryPlan } from '@apollo/query-planner';
import type {
  GatewayExecutionResult,
  GatewayGraphQLRequestContext,
  GatewayInterface,
  GatewaySchemaLoadOrUpdateCallback,
} from '@apollo/server-gateway-interface';
import {
  executeSync,
  GraphQLError,
  Kind,
  OperationTypeNode,
  visit,
  type DocumentNode,
  type VariableDefinitionNode,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import { LRUCache } from 'lru-cache';
import { executePlanNode } from './plan-execution';
import { compileResultShape, type ResultShape } from './result-shaping';
import type { SupergraphPlanning } from './supergraph-planning';

type OperationContext = ReturnType<typeof buildOperationContext>;

/** What one operation text needs on every request, built on its first. */
interface PreparedOperation {
  operationContext: OperationContext;
  operation: Operation;
  queryPlan: QueryPlan;
  shape: ResultShape;
}

/** Roughly what the plan cache holds at most (entries are weighed by their plan's JSON). */
const PLAN_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * The gateway's executor for queries and mutations, in place of `ApolloGateway`'s: plans are
 * made with the same planner, and run with the same rules (`executePlanNode`,
 * `compileResultShape`), but all a text needs (its operation, plan and result shape) is built
 * once and kept by the text's hash, where stock rebuilds the operation and walks it for every
 * request. Apollo Server sees an ordinary `GatewayInterface` over a fixed supergraph.
 */
export class FederationGateway implements GatewayInterface {
  private readonly listeners = new Set<GatewaySchemaLoadOrUpdateCallback>();
  private readonly prepared = new LRUCache<string, PreparedOperation>({
    maxSize: PLAN_CACHE_BYTES,
    sizeCalculation: (entry) => Math.max(1, JSON.stringify(entry.queryPlan).length * 4),
  });

  constructor(
    private readonly options: {
      planning: SupergraphPlanning;
      /** The data source of each subgraph, by its name in the supergraph. */
      dataSources: ReadonlyMap<string, GraphQLDataSource>;
    },
  ) {}

  onSchemaLoadOrUpdate(callback: GatewaySchemaLoadOrUpdateCallback): () => void {
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }

  load(): Promise<{
    executor: (context: GatewayGraphQLRequestContext) => Promise<GatewayExecutionResult>;
  }> {
    const { schema, supergraphSdl } = this.options.planning;
    for (const listener of this.listeners)
      listener({ apiSchema: schema, coreSupergraphSdl: supergraphSdl });
    return Promise.resolve({ executor: (context) => this.execute(context) });
  }

  stop(): Promise<void> {
    this.listeners.clear();
    return Promise.resolve();
  }

  private prepare(requestContext: GatewayGraphQLRequestContext): PreparedOperation {
    const { document, queryHash, request } = requestContext;
    const key = `${queryHash}\n${request.operationName ?? ''}`;
    let prepared = this.prepared.get(key);
    if (!prepared) {
      prepared = prepareOperation(this.options.planning, document, request.operationName);
      this.prepared.set(key, prepared);
    }
    return prepared;
  }

  private async execute(
    requestContext: GatewayGraphQLRequestContext,
  ): Promise<GatewayExecutionResult> {
    let prepared: PreparedOperation;
    try {
      prepared = this.prepare(requestContext);
    } catch (error) {
      if (error instanceof GraphQLError) return { errors: [error] };
      throw error;
    }
    const { operationContext, operation, queryPlan, shape } = prepared;
    const { variables } = requestContext.request;
    const definitions = operationContext.operation.variableDefinitions;
    if (definitions?.length) {
      const { errors } = getVariableValues(operationContext.schema, definitions, variables ?? {});
      if (errors) return { errors };
    }
    if (queryPlan.node?.kind === 'Subscription')
      throw new Error('Execution of subscriptions not supported by gateway');

    const errors: unknown[] = [];
    const unfiltered = Object.create(null) as Record<string, unknown>;
    if (queryPlan.node)
      await executePlanNode(
        {
          requestContext,
          operation,
          serviceMap: this.options.dataSources,
          supergraphSchema: this.options.planning.supergraphSchema,
          errors,
        },
        queryPlan.node,
        unfiltered,
      );
    try {
      const { data, errors: completionErrors } = shape(unfiltered, variables, (field) =>
        introspect(operationContext, field, variables),
      );
      if (errors.length === 0 && completionErrors.length > 0)
        return { extensions: { valueCompletion: completionErrors }, data };
      return errors.length === 0 ? { data } : { errors: errors as GraphQLError[], data };
    } catch (error) {
      if (error instanceof GraphQLError) return { errors: [error] };
      if (error instanceof Error)
        return { errors: [new GraphQLError(error.message, { originalError: error })] };
      return { errors: [new GraphQLError('Unexpected error during query plan execution')] };
    }
  }
}

function prepareOperation(
  planning: SupergraphPlanning,
  document: DocumentNode,
  operationName: string | undefined,
): PreparedOperation {
  const operationContext = buildOperationContext({
    schema: planning.schema,
    operationDocument: document,
    operationName,
  });
  const operation = operationFromDocument(planning.apiSchema, document, { operationName });
  return {
    operationContext,
    operation,
    queryPlan: planning.planner.buildQueryPlan(operation),
    shape: compileResultShape(operation),
  };
}

/** `__schema` / `__type`, answered from the API schema as a graphql-js query of its own. */
function introspect(
  operationContext: OperationContext,
  field: FieldSelection,
  variables: Record<string, unknown> | undefined,
): unknown {
  const selection = field.expandFragments().toSelectionNode();
  const used = new Set<string>();
  visit(selection, { Variable: ({ name }) => void used.add(name.value) });
  const definitions: VariableDefinitionNode[] | undefined =
    operationContext.operation.variableDefinitions?.filter((definition) =>
      used.has(definition.variable.name.value),
    );
  const { data, errors } = executeSync({
    schema: operationContext.schema,
    document: {
      kind: Kind.DOCUMENT,
      definitions: [
        {
          kind: Kind.OPERATION_DEFINITION,
          operation: OperationTypeNode.QUERY,
          variableDefinitions: definitions,
          selectionSet: { kind: Kind.SELECTION_SET, selections: [selection] },
        },
      ],
    },
    rootValue: {},
    variableValues: variables,
  });
  assert(!errors?.length && data, () => `Introspection failed: ${JSON.stringify(errors)}`);
  return data[selection.alias?.value ?? selection.name.value];
}
