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
import {
  createPermissionCheckService,
  type PermissionCheckService,
} from '../permission-check.service';
import { createRbacStore, type RbacStore } from '../rbac.store';
import { createRoleService, type RoleService } from '../role.service';
import { createUserChangeService, type UserChangeService } from '../user-change.service';
import { useTestDatabase, type TestDatabase } from './permission.database';
import { createFakeUserDirectory } from './permission.fakes';

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
    redis = await createRedis({
      url: database.run.redisUrl,
      keyPrefix: database.run.redisKeyPrefix,
      logger: createLogger({ name: 'permission-test', level: 'silent' }),
    });
    const store = createRbacStore({
      db: database.db,
      relay: { kick: () => services.relayKicks++ },
    });
    const cache = createPermissionCache(redis);
    const checks = createPermissionCheckService({ assignments: store.assignments, cache });
    const policy = createActorPolicy({
      checks,
      assignments: store.assignments,
      audit: store.audit,
    });
    const directory = createFakeUserDirectory(users);
    const lastAdmin = createLastAdminRule({ users: directory });
    Object.assign(services, {
      store,
      checks,
      roles: createRoleService({ store, policy, cache }),
      assignments: createAssignmentService({ store, policy, cache, users: directory, lastAdmin }),
      userChanges: createUserChangeService({ store, policy, lastAdmin }),
      leaving: store.leaving,
    });
    await services.roles.seed();
  });
  afterAll(async () => {
    await redis?.quit();
  });
  return services;
}
