import {
  grpcHealthReport,
  managedClients,
  type GrpcClient,
  type ManagedClientFactory,
} from '@platform/grpc';
import type { Lifecycle } from '@platform/lifecycle';
import type { Logger } from '@platform/logger';
import { appNameOf, serveMetrics, exportDependencyChecks } from '@platform/metrics';
import { authV1, permissionV1 } from '@platform/proto';
import { createRedis, type Redis } from '@platform/redis';
import { createAccessTokens, type TokenVerifier } from '@platform/tokens';
import {
  createSubgraph,
  type Subgraph,
  type SubgraphContext,
  type SubgraphOptions,
} from './subgraph.server';

/** What `subgraphEnv` (in @platform/config) gives every subgraph. */
export interface SubgraphRuntimeEnv {
  HOST: string;
  PORT: number;
  /** The internal `/metrics` port (on HOST); 0 turns it off. */
  METRICS_PORT: number;
  INTERNAL_TOKEN: string;
  AUTH_SERVICE_ADDR: string;
  PERMISSION_SERVICE_ADDR: string;
  TOKEN_ISSUER: string;
  TOKEN_AUDIENCE: string;
  REDIS_URL: string;
  REDIS_KEY_PREFIX: string;
}

/** What every subgraph stands on, each part torn down with the lifecycle. */
export interface SubgraphRuntime {
  redis: Redis;
  auth: GrpcClient<typeof authV1.AuthServiceService>;
  permissions: GrpcClient<typeof permissionV1.PermissionServiceService>;
  /** Verifies access tokens: keys from the auth service, ended sessions from Redis. */
  tokens: TokenVerifier;
  /** A client of another service (with the internal credential), closed at shutdown. */
  client: ManagedClientFactory;
  /**
   * Serves the subgraph on HOST:PORT, built on this runtime (its logger, token verifier,
   * permission checks and internal credential), and stops it at shutdown.
   */
  serve<TContext extends SubgraphContext>(
    options: Omit<SubgraphOptions<TContext>, RuntimeProvided>,
  ): Promise<Subgraph>;
}

type RuntimeProvided = 'logger' | 'tokens' | 'permissionService' | 'internalToken';

export async function openSubgraphRuntime(options: {
  env: SubgraphRuntimeEnv;
  logger: Logger;
  lifecycle: Pick<Lifecycle, 'onShutdown'>;
}): Promise<SubgraphRuntime> {
  const { env, logger, lifecycle } = options;
  // Named after the app's logger (`users-subgraph`, ...): the `app` label of every metric.
  await serveMetrics({
    app: appNameOf(logger, 'subgraph'),
    host: env.HOST,
    port: env.METRICS_PORT,
    logger,
    lifecycle,
  });
  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, logger });
  lifecycle.onShutdown('redis', async () => void (await redis.quit()));

  // Every service this subgraph calls, by address: `/ready` asks each one's health.
  const services = new Map<string, string>();
  const managed = managedClients({
    internalToken: env.INTERNAL_TOKEN,
    onShutdown: (name, teardown) => lifecycle.onShutdown(name, teardown),
  });
  const client: ManagedClientFactory = (name, definition, address) => {
    services.set(`${name}-service`, address);
    return managed(name, definition, address);
  };

  const auth = client('auth', authV1.AuthServiceService, env.AUTH_SERVICE_ADDR);
  const permissions = client(
    'permission',
    permissionV1.PermissionServiceService,
    env.PERMISSION_SERVICE_ADDR,
  );
  const { verifier: tokens } = createAccessTokens({
    issuer: env.TOKEN_ISSUER,
    audience: env.TOKEN_AUDIENCE,
    redis,
    jwks: auth,
  });
  // dependency_up{dependency}, as the services report theirs: the `/ready` checks, on scrape.
  exportDependencyChecks(() => readiness(redis, services));
  return {
    redis,
    auth,
    permissions,
    tokens,
    client,
    async serve(subgraphOptions) {
      const subgraph = createSubgraph({
        ...subgraphOptions,
        logger,
        tokens,
        permissionService: permissions,
        internalToken: env.INTERNAL_TOKEN,
        checkReady: () => readiness(redis, services),
      });
      lifecycle.onShutdown('http server', () => subgraph.stop());
      await subgraph.start(env.HOST, env.PORT);
      return subgraph;
    },
  };
}

/**
 * What a subgraph's `/ready` checks: its Redis (access-token revocations, rate limits)
 * answers PING, and every gRPC service it calls reports SERVING (a service is NOT_SERVING
 * while its own PostgreSQL, Redis or RabbitMQ is down).
 */
async function readiness(
  redis: Pick<Redis, 'ping'>,
  services: ReadonlyMap<string, string>,
): Promise<Record<string, boolean>> {
  const pinged = async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        redis.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer')), 1_000);
        }),
      ]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  };
  const [redisUp, ...serving] = await Promise.all([
    pinged(),
    ...[...services.values()].map(async (address) => (await grpcHealthReport(address)).serving),
  ]);
  return {
    redis: redisUp ?? false,
    ...Object.fromEntries([...services.keys()].map((name, n) => [name, serving[n] ?? false])),
  };
}
