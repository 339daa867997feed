import { createGrpcClient } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { authV1, userV1 } from '@platform/proto';
import { createSubgraph, loadTypeDefs } from '@platform/subgraph';
import { createTokenVerifier } from '@platform/tokens';
import { env } from './environment';
import { createUserLoader, usersResolvers } from './users.resolvers';

const logger = createLogger({ name: 'users-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const grpc = { internalToken: env.INTERNAL_TOKEN };
  const auth = createGrpcClient(authV1.AuthServiceService, {
    ...grpc,
    address: env.AUTH_SERVICE_ADDR,
  });
  lifecycle.onShutdown('auth client', () => auth.close());
  const users = createGrpcClient(userV1.UserServiceService, {
    ...grpc,
    address: env.USER_SERVICE_ADDR,
  });
  lifecycle.onShutdown('user client', () => users.close());

  const subgraph = createSubgraph({
    name: 'users',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: usersResolvers,
    createContext: (base) => ({ ...base, users: createUserLoader(users) }),
    logger,
    tokens: createTokenVerifier({
      issuer: env.TOKEN_ISSUER,
      audience: env.TOKEN_AUDIENCE,
      fetchJwks: async () => (await auth.getJwks({})).keys,
    }),
  });
  lifecycle.onShutdown('http server', () => subgraph.stop());
  await subgraph.start(env.HOST, env.PORT);
});
