import { createGrpcClient } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { authV1, permissionV1, userV1 } from '@platform/proto';
import { createRedis } from '@platform/redis';
import { createSubgraph, loadTypeDefs } from '@platform/subgraph';
import { createSessionRevocations, createTokenVerifier } from '@platform/tokens';
import { createAuthResolvers } from './auth.resolvers';
import { startBootstrapAdmin } from './bootstrap-admin';
import { env } from './environment';
import { createEmailResolvers } from './email.resolvers';
import { createLoginThrottle } from './login.throttle';
import { createProfileResolvers } from './profile.resolvers';
import { createUserLoader, usersResolvers } from './users.resolvers';

const logger = createLogger({ name: 'users-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  // Ended sessions are looked up in Redis, so their access tokens stop working at once.
  const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, logger });
  lifecycle.onShutdown('redis', async () => void (await redis.quit()));
  const revocations = createSessionRevocations(redis);

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
  const permissions = createGrpcClient(permissionV1.PermissionServiceService, {
    ...grpc,
    address: env.PERMISSION_SERVICE_ADDR,
  });
  lifecycle.onShutdown('permission client', () => permissions.close());

  const throttle = createLoginThrottle(redis, {
    perAddressPerMinute: env.RATE_LIMIT_PER_ADDRESS,
    freeFailures: 5,
    maxDelaySeconds: 15 * 60,
  });
  const profiles = createProfileResolvers({ users, auth, permissions });
  const email = createEmailResolvers({ users, auth }, throttle);
  const identity = createAuthResolvers({ users, auth, permissions }, throttle, logger);
  const subgraph = createSubgraph({
    name: 'users',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: {
      ...usersResolvers,
      Query: { ...usersResolvers.Query, ...identity.Query, ...profiles.Query },
      Mutation: { ...identity.Mutation, ...profiles.Mutation, ...email.Mutation },
    },
    createContext: (base) => ({
      ...base,
      users: createUserLoader(users),
    }),
    logger,
    permissionService: permissions,
    tokens: createTokenVerifier({
      issuer: env.TOKEN_ISSUER,
      audience: env.TOKEN_AUDIENCE,
      fetchJwks: async () => (await auth.getJwks({})).keys,
      isRevoked: (sessionId) => revocations.isRevoked(sessionId),
    }),
  });
  lifecycle.onShutdown('http server', () => subgraph.stop());
  await subgraph.start(env.HOST, env.PORT);

  if (env.ADMIN_EMAIL && env.ADMIN_PASSWORD) {
    const bootstrap = startBootstrapAdmin(
      { users, auth, permissions },
      { email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD },
      logger,
    );
    lifecycle.onShutdown('bootstrap admin', () => bootstrap.stop());
  } else if (env.ADMIN_EMAIL || env.ADMIN_PASSWORD) {
    logger.warn('set both ADMIN_EMAIL and ADMIN_PASSWORD to create the bootstrap admin');
  }
});
