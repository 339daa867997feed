import { buildOperationContext, type GraphQLDataSource } from '@apollo/gateway';
import {
  assert,
  operationFromDocument,
  type FieldSelection,
  type Operation,
} from '@apollo/federation-internals';
import type { PlanNode, QueryPlan } from '@apollo/query-planner';
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
  type DirectiveNode,
  type DocumentNode,
  type VariableDefinitionNode,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import { LRUCache } from 'lru-cache';
import { executePlanNode } from './plan-execution';
import { compileResultShape, type ResultShape } from './result-shaping';
import type { SupergraphPlanning } from './supergraph-planning';

type OperationContext = ReturnType<typeof buildOperationContext>;

/** What running one operation needs, whatever its plan. */
export interface OperationExecution {
  operationContext: OperationContext;
  operation: Operation;
  shape: ResultShape;
  /** Variables given as the `if` of `@skip` / `@include` (a `Boolean!`: null is refused). */
  conditionVariables: readonly string[];
  /** Whether the operation declares `$representations`, the name entity fetches use. */
  declaresRepresentations: boolean;
}

/** What one operation text needs on every request, built on its first. */
interface PreparedOperation extends OperationExecution {
  queryPlan: QueryPlan;
}

/** Roughly what the cache of prepared operations may take of the heap. */
const PREPARED_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * What a prepared operation takes of the heap, roughly (measured: about 4 KB for a text of
 * one field, and 1 KB more per selection, for its operation objects and result shape), plus
 * its plan.
 */
function preparedBytes(prepared: PreparedOperation): number {
  return 4_096 + 1_536 * prepared.shape.steps + JSON.stringify(prepared.queryPlan).length;
}

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
    maxSize: PREPARED_CACHE_BYTES,
    sizeCalculation: preparedBytes,
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
    const { operationContext, queryPlan } = prepared;
    const { variables } = requestContext.request;
    const definitions = operationContext.operation.variableDefinitions;
    if (definitions?.length) {
      const { errors } = getVariableValues(operationContext.schema, definitions, variables ?? {});
      if (errors) return { errors };
    }
    if (queryPlan.node?.kind === 'Subscription')
      throw new Error('Execution of subscriptions not supported by gateway');
    return executeOperation({
      planning: this.options.planning,
      dataSources: this.options.dataSources,
      prepared,
      node: queryPlan.node,
      requestContext,
    });
  }
}

/**
 * Runs a plan of a prepared operation and makes the client's answer of what came back: the
 * subgraphs' errors and failures as `errors`, or, when there were none, what the result
 * shaping refused as `extensions.valueCompletion` (as stock @apollo/gateway answers).
 */
export async function executeOperation(options: {
  planning: SupergraphPlanning;
  dataSources: ReadonlyMap<string, GraphQLDataSource>;
  prepared: OperationExecution;
  node: PlanNode | undefined;
  requestContext: GatewayGraphQLRequestContext;
}): Promise<GatewayExecutionResult> {
  const { prepared, node, requestContext } = options;
  const { operationContext, shape } = prepared;
  const { variables } = requestContext.request;
  const refused = refusedVariable(prepared, node, variables);
  if (refused)
    return {
      errors: [
        new GraphQLError(refused, {
          extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
        }),
      ],
    };
  const errors: unknown[] = [];
  const unfiltered = Object.create(null) as Record<string, unknown>;
  if (node)
    await executePlanNode(
      {
        requestContext,
        operation: prepared.operation,
        serviceMap: options.dataSources,
        supergraphSchema: options.planning.supergraphSchema,
        errors,
      },
      node,
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

/** What running any plan of one operation needs (a subscription's events run several). */
export function prepareExecution(
  planning: SupergraphPlanning,
  document: DocumentNode,
  operationName: string | undefined,
): OperationExecution {
  const operation = operationFromDocument(planning.apiSchema, document, { operationName });
  const operationContext = buildOperationContext({
    schema: planning.schema,
    operationDocument: document,
    operationName,
  });
  const conditionVariables = new Set<string>();
  const findConditions = {
    Directive: (directive: DirectiveNode) => {
      if (directive.name.value !== 'skip' && directive.name.value !== 'include') return;
      for (const argument of directive.arguments ?? [])
        if (argument.value.kind === Kind.VARIABLE)
          conditionVariables.add(argument.value.name.value);
    },
  };
  visit(operationContext.operation, findConditions);
  for (const fragment of Object.values(operationContext.fragments)) visit(fragment, findConditions);
  return {
    operationContext,
    operation,
    shape: compileResultShape(operation),
    conditionVariables: [...conditionVariables],
    declaresRepresentations: !!operationContext.operation.variableDefinitions?.some(
      (definition) => definition.variable.name.value === 'representations',
    ),
  };
}

/**
 * What the client's variables ask that no plan can do, as a message naming the variable:
 * a null `if` for `@skip` / `@include` (allowed through validation by a variable's default,
 * then given null), or `$representations` where an entity fetch needs that name for itself.
 */
export function refusedVariable(
  prepared: OperationExecution,
  node: PlanNode | undefined,
  variables: Record<string, unknown> | undefined,
): string | undefined {
  for (const name of prepared.conditionVariables)
    if (
      variables &&
      Object.prototype.hasOwnProperty.call(variables, name) &&
      variables[name] === null
    )
      return `Variable "$${name}" is the "if" of @skip or @include, a Boolean!: it must not be null.`;
  if (prepared.declaresRepresentations && node && entityFetchUses(node, 'representations'))
    return 'Variable "$representations" is a name the gateway needs for its own entity fetches here; use another name.';
  return undefined;
}

function entityFetchUses(node: PlanNode, variable: string): boolean {
  switch (node.kind) {
    case 'Fetch':
      return !!node.requires && !!node.variableUsages?.includes(variable);
    case 'Sequence':
    case 'Parallel':
      return node.nodes.some((child) => entityFetchUses(child, variable));
    case 'Flatten':
      return entityFetchUses(node.node, variable);
    case 'Condition':
      return [node.ifClause, node.elseClause].some(
        (branch) => !!branch && entityFetchUses(branch, variable),
      );
    case 'Defer':
      return false;
  }
}

function prepareOperation(
  planning: SupergraphPlanning,
  document: DocumentNode,
  operationName: string | undefined,
): PreparedOperation {
  const execution = prepareExecution(planning, document, operationName);
  return { ...execution, queryPlan: planning.planner.buildQueryPlan(execution.operation) };
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
