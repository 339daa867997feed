import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { formatGraphQLError, OUTAGE_RETRY_AFTER_SECONDS } from '@platform/errors';
import { createGrpcClient, INTERNAL_TOKEN_HEADER, isInternalCredential } from '@platform/grpc';
import {
  createGraphQLHandler,
  createHttpServer,
  graphqlMetricsPlugin,
  requestLogPlugin,
  sendJson,
} from '@platform/http-server';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger, currentContext, newCorrelationId } from '@platform/logger';
import { serveMetrics } from '@platform/metrics';
import { authV1 } from '@platform/proto';
import { createRedis, watchKey } from '@platform/redis';
import { createAccessTokens, REVOKED_SESSIONS_KEY } from '@platform/tokens';
import { checkAccessToken, publicRootFields } from './access/public-operations';
import { clientAddressOf } from './client-address';
import { withCors } from './cors';
import { exportDependencyStatus, exportSubscriptionGauges } from './gateway.metrics';
import { env, operationLimits } from './environment';
import { MAX_DOCUMENT_TOKENS } from './limits/operation-cost';
import { newDocumentCharge, operationLimitsPlugin } from './limits/operation-limits.plugin';
import { createRequestBudget } from './limits/request-budget';
import { textNestingPlugin } from './limits/text-nesting.plugin';
import { operationKindPlugin } from './input/operation-kind.plugin';
import { outageStatusPlugin } from './outage.plugin';
import { wellFormedTextPlugin } from './input/well-formed-text.plugin';
import { grpcDependency, httpDependency, readinessRoute, redisDependency } from './readiness';
import { SubgraphDataSource, type GatewayContext } from './subgraph.data-source';
import { createSubgraphFetcher, subgraphInstances } from './subgraph.fetcher';
import { FederationGateway } from './execution/federation-gateway';
import { createSupergraphPlanning } from './execution/supergraph-planning';
import { createFederatedSubscriptions } from './subscriptions/federated-subscriptions';
import { createSharedLimits } from './subscriptions/shared-limits';
import { attachSubscriptionServer } from './subscriptions/subscription.server';
import { createUpstreamSubscriptions } from './subscriptions/upstream';
import { loadSupergraphSdl } from './supergraph.source';

const logger = createLogger({ name: 'gateway', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });
const production = env.NODE_ENV === 'production';

lifecycle.run(async () => {
  // Internal: its own host and port, never the public one.
  await serveMetrics({
    app: 'gateway',
    host: env.METRICS_HOST,
    port: env.METRICS_PORT,
    logger,
    lifecycle,
  });
  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, logger });
  lifecycle.onShutdown('redis', async () => void (await redis.quit()));

  const supergraphSdl = loadSupergraphSdl({
    configPath: env.SUPERGRAPH_CONFIG,
    supergraphFile: env.SUPERGRAPH_FILE,
  });
  const urlOverrides: Record<string, string | undefined> = {
    users: env.USERS_SUBGRAPH_URL,
    rbac: env.RBAC_SUBGRAPH_URL,
    notifications: env.NOTIFICATIONS_SUBGRAPH_URL,
  };
  const planning = createSupergraphPlanning(supergraphSdl);
  const subgraphUrls = new Map<string, string>();
  const dataSources = new Map<string, SubgraphDataSource>();
  const subgraphClient = createSubgraphFetcher({ timeoutMs: env.SUBGRAPH_TIMEOUT_MS });
  lifecycle.onShutdown('subgraph client', () => subgraphClient.close());
  for (const { name, url } of planning.subgraphs) {
    const target = urlOverrides[name] ?? url;
    subgraphUrls.set(name, target);
    dataSources.set(
      name,
      new SubgraphDataSource({
        url: target,
        client: subgraphClient,
        internalToken: env.INTERNAL_TOKEN,
        name,
      }),
    );
  }
  const gateway = new FederationGateway({ planning, dataSources });

  const auth = createGrpcClient(authV1.AuthServiceService, {
    address: env.AUTH_SERVICE_ADDR,
    internalToken: env.INTERNAL_TOKEN,
  });
  lifecycle.onShutdown('auth client', () => auth.close());
  const {
    verifier: tokens,
    revocations,
    fetchJwks,
  } = createAccessTokens({
    issuer: env.TOKEN_ISSUER,
    audience: env.TOKEN_AUDIENCE,
    redis,
    jwks: auth,
  });
  // Redis reports every change to the ended sessions: sessions checked once, and budget points
  // leased, are answered here until then (see createRequestBudget).
  const endedSessions = watchKey(redis, REVOKED_SESSIONS_KEY, { logger });
  lifecycle.onShutdown('ended sessions watch', () => endedSessions.close());

  // Every caller's points, shared by the gateway instances: operations pay for what they ask,
  // and a text not validated here before pays for its validation, over HTTP and WebSocket.
  const budget = createRequestBudget({
    redis,
    revocations,
    endedSessions,
    perSecond: env.REQUEST_BUDGET_PER_SECOND,
    burst: env.REQUEST_BUDGET_BURST,
    logger,
  });
  const chargeNewDocument = newDocumentCharge(budget, logger);

  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    introspection: !production,
    // No "Did you mean ...?" naming fields the caller did not ask for.
    hideSchemaDetailsFromClientErrors: production,
    // Shutdown is ours (@platform/lifecycle): Apollo must not re-raise the signal mid-teardown.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    parseOptions: { maxTokens: MAX_DOCUMENT_TOKENS },
    plugins: [
      // First: it replaces a parser's stack overflow with QUERY_TOO_COMPLEX, and refuses a
      // new text its caller's budget cannot pay for, before the others (metrics, log) read
      // the answer.
      textNestingPlugin<GatewayContext>(logger, {
        beforeParsing: chargeNewDocument,
      }),
      production
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
      requestLogPlugin(logger),
      graphqlMetricsPlugin<GatewayContext>(),
      operationKindPlugin<GatewayContext>(),
      wellFormedTextPlugin<GatewayContext>(),
      // Depth, field and cost limits, then the token's session with the caller's budget (one
      // Redis round trip), then the token's refusal if any: before planning.
      operationLimitsPlugin<GatewayContext>({
        limits: operationLimits,
        budget,
        publicFields: publicRootFields(supergraphSdl),
        logger,
      }),
      // Responses are per user and never cached by HTTP caches: no cache-control computation.
      ApolloServerPluginCacheControlDisabled(),
      // A dependency outage anywhere behind the gateway: HTTP 503 and Retry-After.
      outageStatusPlugin<GatewayContext>(),
    ],
    formatError: (formatted, error) =>
      formatGraphQLError(formatted, error, (internal) =>
        logger.error({ err: internal }, 'request failed'),
      ),
  });
  await apollo.start();
  lifecycle.onShutdown('apollo', () => apollo.stop());

  const graphql = createGraphQLHandler(apollo, async (req) => {
    // Verified once at the gateway (subgraphs verify again before trusting it): signature and
    // claims here, the session with the caller's budget in operationLimitsPlugin, which also
    // answers a token refused or that cannot be checked (Redis or the auth service down).
    const { identity, ...tokenCheck } = await checkAccessToken(
      (header) => tokens.genuineHeader(header),
      req.headers.authorization,
    );
    return {
      ...tokenCheck,
      session: identity ?? undefined,
      correlationId: currentContext()?.correlationId ?? newCorrelationId(),
      userAgent: req.headers['user-agent'],
      clientAddress: clientAddressOf(req, env.TRUST_PROXY),
    };
  });

  const dependencies = [
    ...[...subgraphUrls].map(([name, url]) =>
      httpDependency(
        `${name}-subgraph`,
        subgraphInstances(url).map((instance) => new URL('/health', instance).toString()),
      ),
    ),
    grpcDependency('user-service', env.USER_SERVICE_ADDR),
    grpcDependency('auth-service', env.AUTH_SERVICE_ADDR),
    grpcDependency('permission-service', env.PERMISSION_SERVICE_ADDR),
    grpcDependency('notification-service', env.NOTIFICATION_SERVICE_ADDR),
    redisDependency('redis', redis),
  ];
  exportDependencyStatus(dependencies);

  const origins = new Set(
    (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  );
  const cors = { any: !production && env.CORS_ORIGINS === undefined, origins };

  const http = createHttpServer({
    logger,
    // HSTS only where TLS ends at a proxy we trust to say so.
    isSecure: (req) => env.TRUST_PROXY > 0 && req.headers['x-forwarded-proto'] === 'https',
    routes: {
      '/graphql': withCors(graphql, cors),
      '/health': (_req, res) => sendJson(res, 200, { status: 'ok' }),
      '/ready': readinessRoute(
        dependencies,
        (req) =>
          !production ||
          isInternalCredential(req.headers[INTERNAL_TOKEN_HEADER], env.INTERNAL_TOKEN),
      ),
      '/.well-known/jwks.json': withCors(async (_req, res) => {
        let keys: Awaited<ReturnType<typeof fetchJwks>>;
        try {
          keys = await fetchJwks();
        } catch (error) {
          // The auth service is unreachable (restarting): retryable, and said so.
          logger.warn({ err: error }, 'could not fetch the JWKS');
          res.setHeader('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS));
          sendJson(res, 503, { error: 'Service temporarily unavailable; try again shortly' });
          return;
        }
        res.setHeader('cache-control', 'public, max-age=300');
        sendJson(res, 200, { keys });
      }, cors),
    },
  });
  // Subscriptions: graphql-ws on the same port and path, planned against the supergraph.
  const upstream = createUpstreamSubscriptions({
    urls: subgraphUrls,
    internalToken: env.INTERNAL_TOKEN,
    logger,
  });
  lifecycle.onShutdown('upstream subscriptions', () => upstream.close());
  const subscriptions = attachSubscriptionServer({
    server: http.server,
    chargeNewDocument,
    federated: createFederatedSubscriptions({ planning, dataSources, upstream, logger }),
    tokens,
    revocations,
    operationLimits,
    shared: createSharedLimits({ redis, logger }),
    limits: {
      perUser: env.MAX_SUBSCRIPTIONS_PER_USER,
      connectionsPerUser: env.MAX_CONNECTIONS_PER_USER,
      maxUnauthenticatedMessageBytes: env.WS_MAX_UNAUTHENTICATED_MESSAGE_BYTES,
      maxMessageBytes: env.WS_MAX_MESSAGE_BYTES,
      maxBufferedBytes: env.SUBSCRIPTION_MAX_BUFFERED_BYTES,
      sessionCheckMs: env.SUBSCRIPTION_SESSION_CHECK_MS,
      pingMs: env.WS_PING_MS,
    },
    clientAddressOf: (req) => clientAddressOf(req, env.TRUST_PROXY),
    logger,
  });
  upstream.onDrop((subgraph) => subscriptions.upstreamLost(subgraph));
  exportSubscriptionGauges(subscriptions);
  lifecycle.onShutdown('http server', () => http.close());
  // Open WebSockets first: they would keep the HTTP server from closing.
  lifecycle.onShutdown('subscriptions', () => subscriptions.close());
  const port = await http.listen(env.GATEWAY_HOST, env.GATEWAY_PORT);
  logger.info({ url: `http://localhost:${port}/graphql` }, 'gateway ready');
});
