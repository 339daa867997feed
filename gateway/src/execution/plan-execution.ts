import type { GraphQLDataSource } from '@apollo/gateway';
// Not all in the package's index, but its own code: the same request kind, error paths, merge
// and rewrites as stock execution.
import { applyRewrites, isObjectOfType } from '@apollo/gateway/dist/dataRewrites.js';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types.js';
import { generateHydratedPaths } from '@apollo/gateway/dist/executeQueryPlan.js';
import { deepMerge } from '@apollo/gateway/dist/utilities/deepMerge.js';
import { assert, errorCodeDef, ERRORS, type Operation } from '@apollo/federation-internals';
import {
  evaluateCondition,
  getResponseName,
  type FetchNode,
  type PlanNode,
  type QueryPlanSelectionNode,
  type ResponsePath,
} from '@apollo/query-planner';
import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { inSpan, SpanKind } from '@platform/telemetry';

/**
 * Runs a query plan's fetches against the subgraphs and merges their answers into one result
 * (still unfiltered: `compileResultShape` makes the client's answer of it).
 *
 * The rules of @apollo/gateway's `executeQueryPlan` (sequence, parallel, flatten, condition;
 * entity representations; merge; rewrites; subgraph errors with their paths in the client's
 * operation), without what the platform does not use: Apollo usage-reporting traces (ftv1)
 * and @defer, which the gateway does not offer.
 */
export interface PlanExecution {
  requestContext: GatewayGraphQLRequestContext;
  /** The operation being run (for `@skip`/`@include` conditions in the plan). */
  operation: Operation;
  serviceMap: ReadonlyMap<string, GraphQLDataSource>;
  supergraphSchema: GraphQLSchema;
  /** Where a fetch's failures and subgraph errors go, as stock execution reports them. */
  errors: unknown[];
}

interface Cursor {
  path: ResponsePath;
  data: unknown;
  fullResult: Record<string, unknown>;
}

type Data = Record<string, unknown>;

export async function executePlanNode(
  execution: PlanExecution,
  node: PlanNode,
  data: Data,
): Promise<void> {
  await executeNode(execution, node, { path: [], data, fullResult: data });
}

async function executeNode(
  execution: PlanExecution,
  node: PlanNode,
  cursor: Cursor | undefined,
): Promise<void> {
  if (!cursor) return;
  switch (node.kind) {
    case 'Sequence':
      for (const child of node.nodes) await executeNode(execution, child, cursor);
      return;
    case 'Parallel':
      await Promise.all(node.nodes.map((child) => executeNode(execution, child, cursor)));
      return;
    case 'Flatten':
      return executeNode(execution, node.node, moveIntoCursor(cursor, node.path));
    case 'Fetch':
      try {
        await executeFetch(execution, node, cursor);
      } catch (error) {
        execution.errors.push(error);
      }
      return;
    case 'Condition': {
      const branch = evaluateCondition(
        node,
        execution.operation.variableDefinitions,
        execution.requestContext.request.variables,
      )
        ? node.ifClause
        : node.elseClause;
      if (branch) await executeNode(execution, branch, cursor);
      return;
    }
    case 'Defer':
      assert(false, '@defer support is not available in the gateway');
  }
}

async function executeFetch(execution: PlanExecution, fetch: FetchNode, cursor: Cursor) {
  const service = execution.serviceMap.get(fetch.serviceName);
  if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);
  const entities = (Array.isArray(cursor.data) ? cursor.data : [cursor.data]).filter(
    (entity): entity is Data => entity !== null && entity !== undefined,
  );
  if (entities.length < 1) return;
  const given = execution.requestContext.request.variables;
  const variables: Data = Object.create(null) as Data;
  for (const name of fetch.variableUsages ?? [])
    if (given && Object.prototype.hasOwnProperty.call(given, name) && given[name] !== undefined)
      variables[name] = given[name];

  await inSpan(
    'gateway.fetch',
    { kind: SpanKind.INTERNAL, attributes: { service: fetch.serviceName } },
    async () => {
      const { supergraphSchema } = execution;
      if (!fetch.requires) {
        const received = await send(execution, service, fetch, cursor, variables);
        if (received) applyRewrites(supergraphSchema, fetch.outputRewrites, received);
        for (const entity of entities) deepMerge(entity, received);
        return;
      }
      const representations: Data[] = [];
      const representedEntities: Data[] = [];
      for (const entity of entities) {
        const representation = selectRepresentation(supergraphSchema, entity, fetch.requires);
        if (representation?.['__typename']) {
          applyRewrites(supergraphSchema, fetch.inputRewrites, representation);
          representations.push(representation);
          representedEntities.push(entity);
        }
      }
      if (representations.length < 1) return;
      if ('representations' in variables)
        throw new Error(`Variables cannot contain key "representations"`);
      const received = await send(
        execution,
        service,
        fetch,
        cursor,
        Object.assign(variables, { representations }),
      );
      if (!received) return;
      const receivedEntities = received['_entities'];
      if (!Array.isArray(receivedEntities))
        throw new Error(`Expected "data._entities" in response to be an array`);
      if (receivedEntities.length !== representations.length)
        throw new Error(`Expected "data._entities" to contain ${representations.length} elements`);
      receivedEntities.forEach((receivedEntity: Data | null, index) => {
        const entity = representedEntities[index]!;
        if (receivedEntity && !receivedEntity['__typename'])
          receivedEntity['__typename'] = entity['__typename'];
        if (receivedEntity) applyRewrites(supergraphSchema, fetch.outputRewrites, receivedEntity);
        deepMerge(entity, receivedEntity);
      });
    },
  );
}

async function send(
  execution: PlanExecution,
  service: GraphQLDataSource,
  fetch: FetchNode,
  cursor: Cursor,
  variables: Data,
): Promise<Data | null | undefined> {
  const { requestContext } = execution;
  const response = await service.process({
    kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
    request: { query: fetch.operation, variables, operationName: fetch.operationName },
    incomingRequestContext: requestContext,
    context: requestContext.context,
    document: fetch.operationDocumentNode,
    pathInIncomingRequest: cursor.path,
  });
  if (response.errors) {
    const errorPath = lazyErrorPaths(fetch, cursor);
    for (const error of response.errors)
      execution.errors.push(subgraphError(error, fetch.serviceName, errorPath));
  }
  return response.data as Data | null | undefined;
}

/** A subgraph's error as the client sees it: its code kept, its path in the client's terms. */
function subgraphError(
  error: GraphQLFormattedError,
  serviceName: string,
  errorPath: (path: GraphQLFormattedError['path']) => ReadonlyArray<string | number> | undefined,
): GraphQLError {
  const message = error.message || `Error while fetching subquery from service "${serviceName}"`;
  const options = {
    originalError: error as Error,
    path: errorPath(error.path),
    extensions: { ...error.extensions, serviceName },
  };
  const codeDef = errorCodeDef(error);
  if (!codeDef && error.extensions?.['code']) return new GraphQLError(message, options);
  return (codeDef ?? ERRORS.DOWNSTREAM_SERVICE_ERROR).err(message, options);
}

/**
 * An entity fetch's error path (`_entities`, index, rest) becomes the entity's path in the
 * client's result, computed once per fetch and only when an error has a path.
 */
function lazyErrorPaths(fetch: FetchNode, cursor: Cursor) {
  let hydrated: (string | number)[][] | undefined;
  return (path: GraphQLFormattedError['path']): ReadonlyArray<string | number> | undefined => {
    if (fetch.requires && typeof path?.[1] === 'number') {
      if (!hydrated) {
        hydrated = [];
        generateHydratedPaths([], cursor.path, cursor.fullResult, hydrated);
      }
      return [...(hydrated[path[1]] ?? []), ...path.slice(2)];
    }
    return path ? [...cursor.path, ...path] : undefined;
  };
}

/** What an entity fetch needs of an entity (its key and required fields), or null. */
function selectRepresentation(
  schema: GraphQLSchema,
  source: Data | null,
  selections: readonly QueryPlanSelectionNode[],
): Data | null {
  if (source === null) return null;
  const result: Data = Object.create(null) as Data;
  for (const selection of selections) {
    if (selection.kind === 'Field') {
      const responseName = getResponseName(selection);
      const value = Object.prototype.hasOwnProperty.call(source, responseName)
        ? source[responseName]
        : undefined;
      if (value === undefined) return null;
      const nested = selection.selections;
      if (Array.isArray(value))
        result[responseName] = value.map((element: Data | null) =>
          nested ? selectRepresentation(schema, element, nested) : element,
        );
      else if (nested) result[responseName] = selectRepresentation(schema, value as Data, nested);
      else result[responseName] = value;
    } else if (selection.typeCondition && isObjectOfType(schema, source, selection.typeCondition)) {
      deepMerge(result, selectRepresentation(schema, source, selection.selections));
    }
  }
  return result;
}

function moveIntoCursor(cursor: Cursor, path: ResponsePath): Cursor | undefined {
  const data = flattenAtPath(cursor.data, path);
  return data ? { path: cursor.path.concat(path), data, fullResult: cursor.fullResult } : undefined;
}

function flattenAtPath(value: unknown, path: ResponsePath): unknown {
  if (path.length === 0 || value === undefined || value === null) return value;
  const [current, ...rest] = path;
  if (current === '@')
    return (value as unknown[]).flatMap((element) => flattenAtPath(element, rest));
  assert(typeof current === 'string', () => `Unexpected ${typeof current} found in path`);
  assert(!Array.isArray(value), () => `Unexpected array in result for path element ${current}`);
  const object = value as Data;
  return flattenAtPath(
    Object.prototype.hasOwnProperty.call(object, current) ? object[current] : undefined,
    rest,
  );
}
