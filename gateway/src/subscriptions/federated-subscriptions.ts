import type { GraphQLDataSource } from '@apollo/gateway';
import type { FetchNode, PlanNode, QueryPlan } from '@apollo/query-planner';
import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import {
  GraphQLError,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import type { Logger } from '@platform/logger';
import type { UpstreamEventExtensions } from '@platform/subgraph';
import { contextFromHeaders, inSpan, SpanKind } from '@platform/telemetry';

import type { GatewayContext } from '../subgraph.data-source';
import {
  executeOperation,
  prepareExecution,
  refusedVariable,
  type OperationExecution,
} from '../execution/federation-gateway';
import type { SupergraphPlanning } from '../execution/supergraph-planning';
import type { UpstreamSubscriptions } from './upstream';
import { endingSource } from './socket-messages';

/** The plan of one subscription operation: the root field's fetch, then the rest. */
interface SubscriptionPlan {
  primary: FetchNode;
  rest: PlanNode | undefined;
}

/**
 * The subgraph refused or ended a subscription with these errors (already translated there:
 * SERVICE_UNAVAILABLE when its Redis or services are down); the gateway's server passes them
 * on with their codes.
 */
export class UpstreamSubscriptionError extends Error {
  constructor(readonly errors: readonly GraphQLFormattedError[]) {
    super(errors[0]?.message ?? 'Subscription failed upstream');
    this.name = 'UpstreamSubscriptionError';
  }
}

/** The primary fetch is answered from the upstream event under this (reserved) name. */
const EVENT_SOURCE = '__subscription_event__';

export interface FederatedSubscriptions {
  /** The API schema (what clients see), for validating operations. */
  readonly schema: GraphQLSchema;
  /**
   * Plans a subscription against the supergraph; throws a GraphQLError when the operation
   * cannot be planned or is not a subscription, or when its variables ask what no plan can do
   * (a null `if` of `@skip`/`@include`): refused at subscribe, not at every event.
   */
  plan(
    document: DocumentNode,
    operationName: string | undefined,
    variables: Record<string, unknown>,
  ): SubscriptionPlan;
  /**
   * Subscribes to the root field's subgraph (over the shared upstream connection) and, for
   * each event, resolves what the other subgraphs own exactly as for a query.
   */
  run(options: {
    plan: SubscriptionPlan;
    document: DocumentNode;
    operationName: string | undefined;
    variables: Record<string, unknown>;
    context: GatewayContext;
  }): AsyncGenerator<ExecutionResult>;
}

export function createFederatedSubscriptions(options: {
  planning: SupergraphPlanning;
  /** The gateway's own data sources, by subgraph name. */
  dataSources: ReadonlyMap<string, GraphQLDataSource>;
  upstream: UpstreamSubscriptions;
  logger: Logger;
}): FederatedSubscriptions {
  const { planning } = options;
  const { schema, planner } = planning;
  const plans = new Map<string, SubscriptionPlan>();
  const { logger } = options;

  function plan(
    document: DocumentNode,
    operationName: string | undefined,
    variables: Record<string, unknown>,
  ): SubscriptionPlan {
    // The operation its events run with, built once per document, not once per subscribe.
    const execution = executionFor(document, operationName);
    const planned = planOf(execution.operation, operationName);
    // The rules every event would apply (executeOperation), applied once, before subscribing:
    // entity fetches are in `rest` (the event answers the primary fetch).
    const refused = refusedVariable(execution, planned.rest, variables);
    if (refused) throw new GraphQLError(refused, { extensions: { code: 'BAD_USER_INPUT' } });
    return planned;
  }

  function planOf(
    operation: OperationExecution['operation'],
    operationName: string | undefined,
  ): SubscriptionPlan {
    const key = `${operationName ?? ''}\n${operation.toString()}`;
    const cached = plans.get(key);
    if (cached) return cached;
    const queryPlan: QueryPlan = planner.buildQueryPlan(operation);
    const node = queryPlan.node;
    if (node?.kind !== 'Subscription')
      throw new GraphQLError(
        'Only subscriptions are served over WebSocket; use HTTP for the rest',
        {
          extensions: { code: 'BAD_USER_INPUT' },
        },
      );
    const planned = { primary: node.primary, rest: node.rest };
    if (plans.size < 1_000) plans.set(key, planned);
    return planned;
  }

  // One per operation text (documents are shared by the subscription server), not per client.
  const executions = new WeakMap<DocumentNode, Map<string, OperationExecution>>();
  function executionFor(document: DocumentNode, operationName: string | undefined) {
    const byName = executions.get(document) ?? new Map<string, OperationExecution>();
    executions.set(document, byName);
    let execution = byName.get(operationName ?? '');
    if (!execution) {
      execution = prepareExecution(planning, document, operationName);
      byName.set(operationName ?? '', execution);
    }
    return execution;
  }

  /**
   * `subscribe` as an async generator: a failure while setting it up reaches the client as the
   * subscription's error, as any later one (thrown here, it would close the client's socket).
   */
  function run(args: Parameters<FederatedSubscriptions['run']>[0]) {
    try {
      return subscribe(args);
    } catch (error) {
      return (async function* failed(): AsyncGenerator<ExecutionResult> {
        yield* [];
        throw error;
      })();
    }
  }

  function subscribe({
    plan: { primary, rest },
    document,
    operationName,
    variables,
    context,
  }: Parameters<FederatedSubscriptions['run']>[0]): AsyncGenerator<ExecutionResult> {
    const prepared = executionFor(document, operationName);
    const primaryVariables = Object.fromEntries(
      (primary.variableUsages ?? []).map((name) => [name, variables[name]]),
    );
    const events = options.upstream.subscribe(primary.serviceName, {
      query: primary.operation,
      operationName: primary.operationName,
      variables: primaryVariables,
      // The subgraph verifies the user again (zero trust), per subscription.
      extensions: { authorization: context.authorization },
    });
    // Each event runs the plan with its root fetch answered by the event itself.
    const eventFetch: FetchNode = { ...primary, serviceName: EVENT_SOURCE };
    const eventPlan: PlanNode = rest ? { kind: 'Sequence', nodes: [eventFetch, rest] } : eventFetch;
    // Ending the subscription ends the upstream one at once, not at its next event.
    return endingSource(results(), events);

    async function* results(): AsyncGenerator<ExecutionResult> {
      try {
        for await (const event of events) {
          // The subgraph's errors, as it formatted them (codes kept, nothing internal).
          const errors = (event.errors ?? []).map(
            (error) =>
              new GraphQLError(error.message, { path: error.path, extensions: error.extensions }),
          );
          if (!event.data) {
            yield { errors };
            return;
          }
          const eventSource: GraphQLDataSource = {
            process: () =>
              Promise.resolve({
                data: event.data,
                ...(errors.length ? { errors: event.errors } : {}),
              }),
          };
          const dataSources = new Map(options.dataSources).set(EVENT_SOURCE, eventSource);
          const requestContext = {
            request: { variables },
            context,
            logger,
            metrics: {},
          } as unknown as GatewayGraphQLRequestContext;
          // A child of the work that produced the event (the subgraph sends its trace context
          // with it): the live push joins the trace of the operation that caused it.
          const trace = (event.extensions as UpstreamEventExtensions | undefined)?.traceContext;
          const name = operationName ?? prepared.operationContext.operation.name?.value;
          yield await inSpan(
            `subscription event ${name ?? primary.serviceName}`,
            {
              kind: SpanKind.INTERNAL,
              parent: contextFromHeaders(trace),
              attributes: {
                'graphql.operation.type': 'subscription',
                ...(name ? { 'graphql.operation.name': name } : {}),
                'platform.subscription.subgraph': primary.serviceName,
              },
            },
            () =>
              executeOperation({
                planning,
                dataSources,
                prepared,
                node: eventPlan,
                requestContext,
              }),
          );
        }
      } catch (error) {
        // graphql-ws's client throws an `error` message's payload as it came: the errors.
        if (Array.isArray(error))
          throw new UpstreamSubscriptionError(error as GraphQLFormattedError[]);
        throw error;
      } finally {
        await events.return?.(undefined);
      }
    }
  }

  return { schema, plan, run };
}
