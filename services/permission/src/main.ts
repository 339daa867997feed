import { bindService, createGrpcServer } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { openServiceInfrastructure } from '@platform/service-runtime';
import { permissionV1 } from '@platform/proto';
import { env } from './environment';
import { createPermissionCache } from './permission.cache';
import { startPermissionConsumers } from './permission.consumers';
import { createPermissionHandlers } from './permission.grpc';
import { createPermissionRepository, RBAC_SCHEMA } from './permission.repository';

const logger = createLogger({ name: 'permission-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { db, redis, broker, relay } = await openServiceInfrastructure({
    env,
    schema: RBAC_SCHEMA,
    logger,
    lifecycle,
  });

  const roles = createPermissionRepository(db, relay);
  await roles.ensureBuiltInRoles();

  const cache = createPermissionCache(redis);
  await startPermissionConsumers({ broker, db, cache, queuePrefix: env.EVENTS_EXCHANGE });

  const server = createGrpcServer({
    logger,
    internalToken: env.INTERNAL_TOKEN,
    services: [
      bindService({
        name: 'permission.v1.PermissionService',
        definition: permissionV1.PermissionServiceService,
        handlers: createPermissionHandlers({ roles, cache }),
      }),
    ],
  });
  lifecycle.onShutdown('grpc server', () => server.close(env.SHUTDOWN_TIMEOUT_MS / 2));
  await server.listen(env.GRPC_HOST, env.GRPC_PORT);
});
