import { bindService, createGrpcServer, managedClients } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { openServiceInfrastructure } from '@platform/service-runtime';
import { permissionV1, userV1 } from '@platform/proto';
import { env } from './environment';
import { createPermissionCache } from './permission.cache';
import { startPermissionConsumers } from './permission.consumers';
import { anyActive, createPermissionHandlers } from './permission.grpc';
import { createRoleRepository, RBAC_SCHEMA } from './role.repository';

const logger = createLogger({ name: 'permission-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { db, redis, broker, relay } = await openServiceInfrastructure({
    env,
    schema: RBAC_SCHEMA,
    logger,
    lifecycle,
  });

  // Assignments need the user to exist; the last-admin rule needs to know who is active.
  const client = managedClients({
    internalToken: env.INTERNAL_TOKEN,
    onShutdown: (name, teardown) => lifecycle.onShutdown(name, teardown),
  });
  const users = client('user', userV1.UserServiceService, env.USER_SERVICE_ADDR);

  const roles = createRoleRepository({
    db,
    relay,
    isAnyActive: (ids) => anyActive(users, ids),
  });
  await roles.seed();

  const cache = createPermissionCache(redis);
  await startPermissionConsumers({ broker, roles, cache, queuePrefix: env.EVENTS_EXCHANGE });

  const server = createGrpcServer({
    logger,
    internalToken: env.INTERNAL_TOKEN,
    services: [
      bindService({
        name: 'permission.v1.PermissionService',
        definition: permissionV1.PermissionServiceService,
        handlers: createPermissionHandlers({ roles, cache, users }),
      }),
    ],
  });
  lifecycle.onShutdown('grpc server', () => server.close(env.SHUTDOWN_TIMEOUT_MS / 2));
  await server.listen(env.GRPC_HOST, env.GRPC_PORT);
});
