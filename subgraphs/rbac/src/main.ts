import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { loadTypeDefs, openSubgraphRuntime } from '@platform/subgraph';
import { env } from './environment';
import { createRoleLoader, createUserAccessLoader, rbacResolvers } from './rbac.resolvers';

const logger = createLogger({ name: 'rbac-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const runtime = await openSubgraphRuntime({ env, logger, lifecycle });
  const { permissions } = runtime;

  await runtime.serve({
    name: 'rbac',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: rbacResolvers,
    createContext: (base) => ({
      ...base,
      permissions,
      roles: createRoleLoader(permissions),
      access: createUserAccessLoader(permissions),
    }),
  });
});
