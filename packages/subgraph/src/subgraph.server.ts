import type { IncomingMessage } from 'node:http';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import { AppError, formatGraphQLError, toAppError, toGraphQLError } from '@platform/errors';
import {
  createGraphQLHandler,
  createHttpServer,
  graphqlMetricsPlugin,
  requestLogPlugin,
  sendJson,
  type HttpServer,
} from '@platform/http-server';
import { currentContext, newCorrelationId, runWithContext, type Logger } from '@platform/logger';
import type { Identity, TokenVerifier } from '@platform/tokens';
import { createAuthorizer, type Authorizer, type CheckPermissions } from './authorizer';
import { INTERNAL_TOKEN_HEADER, isInternalCredential } from '@platform/grpc';
import { attachSubscriptionServer } from './subscriptions';

/** What the authorizer needs of the permission service's gRPC client. */
export interface PermissionChecks {
  checkPermissions(request: {
    userId: string;
    permissions: string[];
    scope: string;
  }): Promise<{ allowed: boolean[] }>;
}

export interface SubgraphContext {
  /** The caller, verified from the forwarded access token; null when anonymous. */
  viewer: Identity | null;
  /**
   * Why a presented token was refused or could not be checked (the caller is then anonymous):
   * what `requireViewer` throws, UNAUTHENTICATED or SERVICE_UNAVAILABLE.
   */
  tokenRefusal?: AppError | undefined;
  /** The caller's permission checks, memoised and batched for this request. */
  authz: Authorizer;
  /** The end user's client, as the gateway forwarded it. */
  userAgent: string | undefined;
  /** The end user's network address, as the gateway saw it. */
  clientAddress: string | undefined;
}

export interface SubgraphOptions<TContext extends SubgraphContext> {
  name: string;
  typeDefs: DocumentNode;
  resolvers: GraphQLResolverMap<TContext>;
  /** Per-request additions to the context, e.g. DataLoaders (made fresh for every request). */
  createContext: (base: SubgraphContext) => TContext;
  logger: Logger;
  /**
   * Subgraphs verify the token again, fully (its session included): they never trust the
   * network they sit on. Only `verifyHeader`: never the gateway's deferred session check.
   */
  tokens: Pick<TokenVerifier, 'verifyHeader'>;
  /** The permission service (its batch check), behind every `context.authz`. */
  permissionService: PermissionChecks;
  /** Readiness of what this subgraph depends on (its gRPC services). */
  checkReady?: () => Promise<Record<string, boolean>>;
  /**
   * The platform's internal credential: only callers presenting it (the gateway) are served
   * on `/graphql`, over HTTP and WebSocket; `/health` and `/ready` stay open to probes.
   */
  internalToken: string;
  /** Serve the schema's subscriptions over graphql-ws on `/graphql` too. */
  subscriptions?: boolean;
  /** Deepest operation served, every field counted (a second line behind the gateway's limits). */
  maxDepth?: number;
}

/**
 * The gateway's depth limit (12 by default, a connection's `edges` and `node` not counted)
 * lets through at most 37 fields here: three per connection hop, plus `_entities`.
 */
const MAX_DEPTH = 40;

/** Refuses operations nested deeper than `maxDepth` fields; introspection is not measured. */
export function depthLimit(maxDepth: number): ValidationRule {
  return (context) => {
    const fragmentDepths = new Map<string, number>();
    const depthOf = (selectionSet: SelectionSetNode, visiting: Set<string>): number => {
      let deepest = 0;
      for (const selection of selectionSet.selections) {
        let depth: number;
        if (selection.kind === Kind.FIELD)
          depth =
            selection.selectionSet && !selection.name.value.startsWith('__')
              ? 1 + depthOf(selection.selectionSet, visiting)
              : 1;
        else if (selection.kind === Kind.INLINE_FRAGMENT)
          depth = depthOf(selection.selectionSet, visiting);
        else {
          const name = selection.name.value;
          const fragment = context.getFragment(name);
          // Fragment cycles are NoFragmentCyclesRule's to report.
          if (!fragment || visiting.has(name)) continue;
          depth = fragmentDepths.get(name) ?? -1;
          if (depth < 0) {
            visiting.add(name);
            depth = depthOf(fragment.selectionSet, visiting);
            visiting.delete(name);
            fragmentDepths.set(name, depth);
          }
        }
        deepest = Math.max(deepest, depth);
      }
      return deepest;
    };
    return {
      OperationDefinition(operation) {
        const depth = depthOf(operation.selectionSet, new Set());
        if (depth > maxDepth)
          context.reportError(
            new GraphQLError(`Query depth is ${depth}, above the limit of ${maxDepth}`, {
              nodes: operation,
            }),
          );
      },
    };
  };
}

export interface Subgraph {
  http: HttpServer;
  start(host: string, port: number): Promise<number>;
  stop(): Promise<void>;
  /**
   * Ends every live subscription by closing the gateways' connections with 1012 (Service
   * Restart): for when events were lost on their way here. Each gateway then closes its
   * clients of those subscriptions with 1012, and they reconnect and catch up
   * (docs/notifications.md). Returns how many connections were closed.
   */
  restartSubscriptions(reason: string): number;
}

const isTokenRefusal = (error: unknown): error is AppError =>
  error instanceof AppError && error.code === 'UNAUTHENTICATED';

/**
 * Why a presented token leaves its caller anonymous: refused (UNAUTHENTICATED), or not
 * checkable for a dependency outage (SERVICE_UNAVAILABLE: Redis or the auth service down; the
 * token is then not accepted, and whatever needs the caller answers SERVICE_UNAVAILABLE, with
 * HTTP 200 to the gateway like every other error, so it keeps its code and retryAfter).
 * Undefined for anything else (a fault of ours).
 */
export function tokenFailure(error: unknown): AppError | undefined {
  if (isTokenRefusal(error)) return error;
  const translated = toAppError(error);
  return translated.code === 'SERVICE_UNAVAILABLE' ? translated : undefined;
}

/**
 * A federation subgraph on node:http: `/graphql`, `/health`, `/ready`. Errors are
 * translated to the contract's codes and internals are masked (and logged).
 */
export function createSubgraph<TContext extends SubgraphContext>(
  options: SubgraphOptions<TContext>,
): Subgraph {
  const { logger } = options;
  const checkPermissions: CheckPermissions = async (userId, permissions, scope) =>
    (await options.permissionService.checkPermissions({ userId, permissions, scope })).allowed;
  const schema = buildSubgraphSchema([
    { typeDefs: options.typeDefs, resolvers: options.resolvers as GraphQLResolverMap<unknown> },
  ]);
  const apollo = new ApolloServer<TContext>({
    schema,
    validationRules: [depthLimit(options.maxDepth ?? MAX_DEPTH)],
    // Subgraphs are internal: only the gateway talks to them, and it needs introspection of _service.
    plugins: [
      ApolloServerPluginLandingPageDisabled(),
      // No HTTP caching of GraphQL responses here: skip computing cache hints per field.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
      requestLogPlugin(logger),
      graphqlMetricsPlugin<TContext>(),
    ],
    // Shutdown is ours (@platform/lifecycle): Apollo must not re-raise the signal mid-teardown.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) =>
      formatGraphQLError(formatted, error, (internal) =>
        logger.error({ err: internal }, 'resolver failed'),
      ),
  });

  // Identity is verified once per request, in the route, and handed to the GraphQL context.
  const identities = new WeakMap<IncomingMessage, Identity | Error | null>();
  const graphql = createGraphQLHandler(apollo, async (req: IncomingMessage) => {
    const identity = identities.get(req) ?? null;
    // A refused or uncheckable token leaves the caller anonymous: public fields work, the
    // others say why (UNAUTHENTICATED, or SERVICE_UNAVAILABLE while it cannot be checked).
    const tokenRefusal = identity instanceof Error ? tokenFailure(identity) : undefined;
    if (identity instanceof Error && !tokenRefusal) throw toGraphQLError(identity);
    const viewer = identity instanceof Error ? null : identity;
    return options.createContext({
      viewer,
      tokenRefusal,
      authz: createAuthorizer(viewer, checkPermissions, tokenRefusal),
      userAgent: req.headers['user-agent'],
      clientAddress: req.headers['x-client-address']?.toString(),
    });
  });

  const http = createHttpServer({
    logger,
    routes: {
      '/graphql': async (req, res) => {
        // Only the gateway: anyone else on the network would read `_entities` and choose
        // the client address rate limits are keyed by.
        if (!isInternalCredential(req.headers[INTERNAL_TOKEN_HEADER], options.internalToken)) {
          sendJson(res, 401, {
            errors: [
              {
                message: 'Missing or invalid internal credential',
                extensions: { code: 'UNAUTHENTICATED' },
              },
            ],
          });
          return;
        }
        // Carry the verified identity in the request context, so gRPC calls forward it.
        const identity = await options.tokens
          .verifyHeader(req.headers.authorization)
          .catch((error: unknown) => (error instanceof Error ? error : new Error('invalid token')));
        identities.set(req, identity);
        const viewer = identity instanceof Error ? null : identity;
        const correlationId = currentContext()?.correlationId ?? newCorrelationId();
        await runWithContext(
          { correlationId, userId: viewer?.userId, sessionId: viewer?.sessionId },
          () => graphql(req, res),
        );
      },
      '/health': (_req, res) =>
        sendJson(res, 200, {
          status: 'ok',
          // Gateways multiplex their subscriptions: one connection each, however many clients.
          ...(subscriptions
            ? {
                subscriptionConnections: subscriptions.connections(),
                subscriptions: subscriptions.subscriptions(),
              }
            : {}),
        }),
      '/ready': async (_req, res) => {
        const checks = (await options.checkReady?.()) ?? {};
        const down = Object.keys(checks).filter((name) => !checks[name]);
        sendJson(res, down.length === 0 ? 200 : 503, {
          status: down.length === 0 ? 'ready' : 'unavailable',
          down,
          checks,
        });
      },
    },
  });

  const subscriptions = !options.subscriptions
    ? undefined
    : attachSubscriptionServer({
        server: http.server,
        schema,
        internalToken: options.internalToken,
        tokens: options.tokens,
        logger,
        createContext: (viewer) =>
          options.createContext({
            viewer,
            authz: createAuthorizer(viewer, checkPermissions),
            userAgent: undefined,
            clientAddress: undefined,
          }),
      });

  return {
    http,
    restartSubscriptions: (reason) => subscriptions?.restart(reason) ?? 0,
    async start(host, port) {
      await apollo.start();
      const bound = await http.listen(host, port);
      logger.info({ host, port: bound, subgraph: options.name }, 'subgraph listening');
      return bound;
    },
    async stop() {
      // Open subscriptions end first: they would keep the HTTP server from closing.
      await subscriptions?.close();
      await http.close();
      await apollo.stop();
    },
  };
}
