import { bindService } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { openServiceInfrastructure, serveGrpc } from '@platform/service-runtime';
import { userV1 } from '@platform/proto';
import { env } from './environment';
import { createUserCache } from './user.cache';
import { createUserHandlers } from './user.grpc';
import { createUserRepository, USERS_SCHEMA } from './user.repository';
import { createUserService } from './user.service';

const logger = createLogger({ name: 'user-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { db, redis, relay } = await openServiceInfrastructure({
    env,
    schema: USERS_SCHEMA,
    logger,
    lifecycle,
  });

  await serveGrpc({
    env,
    logger,
    lifecycle,
    service: bindService({
      name: 'user.v1.UserService',
      definition: userV1.UserServiceService,
      handlers: createUserHandlers({
        users: createUserService({
          users: createUserRepository(db),
          cache: createUserCache(redis, logger),
          relay,
        }),
      }),
    }),
  });
});
