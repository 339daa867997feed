import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { userV1 } from '@platform/proto';
import { loadTypeDefs, openSubgraphRuntime } from '@platform/subgraph';
import { createAddressThrottle } from './address.throttle';
import { createAuthResolvers } from './auth.resolvers';
import { startBootstrapAdmin } from './bootstrap-admin';
import { env } from './environment';
import { createEmailResolvers } from './email.resolvers';
import { createMfaResolvers } from './mfa.resolvers';
import { createOidcResolvers } from './oidc.resolvers';
import { createPasskeyResolvers } from './passkey.resolvers';
import { createProfileResolvers } from './profile.resolvers';
import { createUserLoader, usersResolvers } from './users.resolvers';

const logger = createLogger({ name: 'users-subgraph', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const runtime = await openSubgraphRuntime({ env, logger, lifecycle });
  const { redis, auth, permissions } = runtime;
  const users = runtime.client('user', userV1.UserServiceService, env.USER_SERVICE_ADDR);

  const throttle = createAddressThrottle(redis, env.RATE_LIMIT_PER_ADDRESS);
  const profiles = createProfileResolvers({ users, auth, permissions });
  const email = createEmailResolvers({ users, auth }, throttle);
  const identity = createAuthResolvers({ users, auth, permissions }, throttle, logger);
  const mfa = createMfaResolvers({ users, auth }, throttle, logger);
  const passkeys = createPasskeyResolvers({ auth }, throttle, logger);
  const oidc = createOidcResolvers({ users, auth, permissions }, throttle, logger);
  await runtime.serve({
    name: 'users',
    typeDefs: loadTypeDefs(new URL('../schema.graphql', import.meta.url)),
    resolvers: {
      ...usersResolvers,
      Query: {
        ...usersResolvers.Query,
        ...identity.Query,
        ...profiles.Query,
        ...mfa.Query,
        ...passkeys.Query,
        ...oidc.Query,
      },
      Mutation: {
        ...identity.Mutation,
        ...profiles.Mutation,
        ...email.Mutation,
        ...mfa.Mutation,
        ...passkeys.Mutation,
        ...oidc.Mutation,
      },
      User: { ...usersResolvers.User, ...mfa.User },
      SignInResult: mfa.SignInResult,
      OidcSignInResult: oidc.OidcSignInResult,
    },
    createContext: (base) => ({
      ...base,
      users: createUserLoader(users),
    }),
  });

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
