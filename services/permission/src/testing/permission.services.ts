// Test-only: the permission service's use cases over a real PostgreSQL and Redis (one isolated
// run per test file), with the user service played by an in-memory directory.
import { afterAll, beforeAll } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createActorPolicy } from '../actor.policy';
import { createAssignmentService, type AssignmentService } from '../assignment.service';
import { createLastAdminRule } from '../last-admin.rule';
import type { LeavingRepository } from '../leaving.repository';
import { createPermissionCache } from '../permission.cache';
import { createRbacReads } from '../rbac.reads';
import {
  createPermissionCheckService,
  type PermissionCheckService,
} from '../permission-check.service';
import { createRbacStore, type RbacStore } from '../rbac.store';
import { createRoleService, type RoleService } from '../role.service';
import { createUserChangeService, type UserChangeService } from '../user-change.service';
import { useTestDatabase, type TestDatabase } from './permission.database';
import { createMfaStates, type MfaStates } from '../mfa-state.service';
import { createFakeMfaDirectory, createFakeUserDirectory } from './permission.fakes';

export interface TestServices {
  readonly database: TestDatabase;
  readonly store: RbacStore;
  readonly roles: RoleService;
  readonly assignments: AssignmentService;
  readonly checks: PermissionCheckService;
  readonly userChanges: UserChangeService;
  /** The leaving marks, outside any transaction. */
  readonly leaving: LeavingRepository;
  /** Who exists, and whether they are active. */
  readonly users: Map<string, 'active' | 'disabled'>;
  /** Times the outbox relay was woken. */
  readonly relayKicks: number;
  /** Users' second factors (the projection), of the first instance. */
  readonly mfa: MfaStates;
  /** The auth service's answers about second factors. */
  readonly mfaDirectory: ReturnType<typeof createFakeMfaDirectory>;
  /**
   * The use cases of another instance of the service on the same database and Redis: its own
   * in-process caches, so what one instance remembers the other does not.
   */
  anotherInstance(): Pick<TestServices, 'roles' | 'assignments' | 'checks'>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Opens the use cases before the file's tests (the built-in roles seeded) and closes them after. */
export function useTestServices(): TestServices {
  const database = useTestDatabase();
  const users = new Map<string, 'active' | 'disabled'>();
  // Filled in before the first test: the database and Redis open only then.
  const services = { database, users, relayKicks: 0 } as Mutable<TestServices>;
  let redis: Redis | undefined;

  beforeAll(async () => {
    const opened = await createRedis({
      url: database.run.redisUrl,
      keyPrefix: database.run.redisKeyPrefix,
      logger: createLogger({ name: 'permission-test', level: 'silent' }),
    });
    redis = opened;
    const store = createRbacStore({
      db: database.db,
      relay: { kick: () => services.relayKicks++ },
    });
    const directory = createFakeUserDirectory(users);
    const mfaDirectory = createFakeMfaDirectory();
    const lastAdmin = createLastAdminRule({ users: directory });
    const instance = (redis: Redis) => {
      const cache = createPermissionCache(redis);
      const reads = createRbacReads({ store, cache });
      const mfa = createMfaStates({
        store,
        cache,
        directory: mfaDirectory,
        logger: { warn() {} },
      });
      const checks = createPermissionCheckService({ reads, cache, mfa });
      const policy = createActorPolicy({
        checks,
        assignments: store.assignments,
        audit: store.audit,
        mfa,
      });
      return {
        checks,
        policy,
        mfa,
        roles: createRoleService({ store, reads, policy, cache }),
        assignments: createAssignmentService({
          store,
          reads,
          policy,
          cache,
          users: directory,
          lastAdmin,
          mfa,
        }),
      };
    };
    const first = instance(opened);
    Object.assign(services, {
      store,
      checks: first.checks,
      roles: first.roles,
      assignments: first.assignments,
      mfa: first.mfa,
      mfaDirectory,
      userChanges: createUserChangeService({ store, policy: first.policy, lastAdmin }),
      leaving: store.leaving,
      anotherInstance: () => instance(opened),
    });
    await services.roles.seed();
  });
  afterAll(async () => {
    await redis?.quit();
  });
  return services;
}
