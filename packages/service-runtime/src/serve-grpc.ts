import { createGrpcServer, type ServiceBinding } from '@platform/grpc';
import type { Lifecycle } from '@platform/lifecycle';
import type { Logger } from '@platform/logger';
import type { DependencyMonitor } from './dependency-monitor';
import { dependencyMonitorOf } from './service-infrastructure';

interface ServeEnv {
  INTERNAL_TOKEN: string;
  GRPC_HOST: string;
  GRPC_PORT: number;
  SHUTDOWN_TIMEOUT_MS: number;
}

/**
 * The last step of a domain service's `main()`: serves its gRPC API (every call must carry
 * the internal credential), drains in-flight calls at shutdown, and listens. Its health
 * service reports each dependency (`postgresql`, `redis`, `rabbitmq`) by name, and NOT_SERVING
 * overall while one is down: those of `dependencies`, by default the ones
 * `openServiceInfrastructure` opened with the same lifecycle.
 */
export async function serveGrpc(options: {
  env: ServeEnv;
  logger: Logger;
  lifecycle: Pick<Lifecycle, 'onShutdown'>;
  service: ServiceBinding;
  dependencies?: DependencyMonitor;
}): Promise<void> {
  const { env } = options;
  const server = createGrpcServer({
    logger: options.logger,
    internalToken: env.INTERNAL_TOKEN,
    services: [options.service],
  });
  (options.dependencies ?? dependencyMonitorOf(options.lifecycle))?.onChange((name, up) =>
    server.setDependencyStatus(name, up),
  );
  options.lifecycle.onShutdown('grpc server', () => server.close(env.SHUTDOWN_TIMEOUT_MS / 2));
  await server.listen(env.GRPC_HOST, env.GRPC_PORT);
}
