import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { createSubgraph, loadTypeDefs, openSubgraphRuntime } from '@platform/subgraph';
import { env } from './environment';
import {
  createAssignmentLoader,
  createEffectivePermissionsLoader,
  createRoleLoader,
  rbacResolvers,
} from './rbac.resolvers';

const logger = createLogger({ name: 'rbac-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { permissions, tokens } = await openSubgraphRuntime({ env, logger, lifecycle });

  const subgraph = createSubgraph({
    name: 'rbac',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: rbacResolvers,
    createContext: (base) => ({
      ...base,
      permissions,
      roles: createRoleLoader(permissions),
      assignments: createAssignmentLoader(permissions),
      effectivePermissions: createEffectivePermissionsLoader(permissions),
    }),
    logger,
    permissionService: permissions,
    tokens,
    internalToken: env.INTERNAL_TOKEN,
  });
  lifecycle.onShutdown('http server', () => subgraph.stop());
  await subgraph.start(env.HOST, env.PORT);
});
