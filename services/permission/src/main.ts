import { bindService, managedClients } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { openServiceInfrastructure, serveGrpc } from '@platform/service-runtime';
import { authV1, permissionV1, userV1 } from '@platform/proto';
import { createActorPolicy } from './actor.policy';
import { createAssignmentService } from './assignment.service';
import { createAuditService } from './audit.service';
import { env } from './environment';
import { createPermissionCache } from './permission.cache';
import { createPermissionCheckService } from './permission-check.service';
import { startPermissionConsumers } from './permission.consumers';
import { createLastAdminRule } from './last-admin.rule';
import { createMfaDirectory } from './mfa.directory';
import { createMfaStates } from './mfa-state.service';
import { createPermissionHandlers } from './permission.grpc';
import { createRbacReads } from './rbac.reads';
import { createRbacStore, RBAC_SCHEMA } from './rbac.store';
import { createRoleService } from './role.service';
import { createUserChangeService } from './user-change.service';
import { createUserDirectory } from './user.directory';

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
  const users = createUserDirectory(
    client('user', userV1.UserServiceService, env.USER_SERVICE_ADDR),
  );
  // The MFA policy needs to know who has a second factor (the auth service owns them).
  const mfaDirectory = createMfaDirectory(
    client('auth', authV1.AuthServiceService, env.AUTH_SERVICE_ADDR),
  );

  const store = createRbacStore({ db, relay });
  const cache = createPermissionCache(redis);
  const reads = createRbacReads({ store, cache });
  const mfa = createMfaStates({ store, cache, directory: mfaDirectory, logger });
  const checks = createPermissionCheckService({ reads, cache, mfa });
  const policy = createActorPolicy({
    checks,
    assignments: store.assignments,
    audit: store.audit,
    mfa,
  });
  const lastAdmin = createLastAdminRule({ users });
  const roles = createRoleService({ store, reads, policy, cache });
  const assignments = createAssignmentService({
    store,
    reads,
    policy,
    cache,
    users,
    lastAdmin,
    mfa,
  });
  const userChanges = createUserChangeService({ store, policy, lastAdmin });
  const audit = createAuditService({ store });
  await roles.seed();

  await startPermissionConsumers({
    broker,
    assignments,
    mfa,
    queuePrefix: env.EVENTS_EXCHANGE,
  });

  await serveGrpc({
    env,
    logger,
    lifecycle,
    service: bindService({
      name: 'permission.v1.PermissionService',
      definition: permissionV1.PermissionServiceService,
      handlers: createPermissionHandlers({ roles, assignments, checks, audit, userChanges }),
    }),
  });
});
