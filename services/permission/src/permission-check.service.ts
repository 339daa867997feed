import { isGranted } from '@platform/permissions';
import { grantOf, mfaMatters } from './mfa.policy';
import type { MfaStates } from './mfa-state.service';
import type { CacheEntry, PermissionCache } from './permission.cache';
import type { RbacReads } from './rbac.reads';

/** Answers what users may do, from the cache of each user's effective permissions. */
export interface PermissionCheckService {
  /** Every permission the user holds in `scope` (their global roles' included), sorted. */
  effectivePermissions(userId: string, scope: string): Promise<string[]>;
  /** Several users' effective permissions in `scope`, in the same order. */
  effectivePermissionsOf(userIds: readonly string[], scope: string): Promise<string[][]>;
  /** Whether the user holds `permission` in `scope`, wildcards included. */
  isAllowed(userId: string, scope: string, permission: string): Promise<boolean>;
  /** One answer per permission, in the same order. */
  areAllowed(userId: string, scope: string, permissions: readonly string[]): Promise<boolean[]>;
}

export function createPermissionCheckService(deps: {
  reads: Pick<RbacReads, 'assignments'>;
  cache: Pick<PermissionCache, 'get' | 'getMany'>;
  mfa: Pick<MfaStates, 'enrolment'>;
  clock?: () => Date;
}): PermissionCheckService {
  const { reads, cache, mfa } = deps;
  const clock = deps.clock ?? (() => new Date());

  /**
   * What the user's roles grant in `scope` under the MFA policy (mfa.policy.ts). Their second
   * factor is looked up only when a role they reach requires one; an answer that had to assume
   * none because the auth service could not say (fail closed) is not cached.
   */
  async function load(userId: string, scope: string): Promise<CacheEntry> {
    const { graph, rows } = await reads.assignments([userId]);
    const now = clock();
    if (!mfaMatters(graph, rows)) {
      const { permissions } = grantOf({ graph, assignments: rows, scope, enrolled: true, now });
      return { permissions, validUntil: null };
    }
    const { enrolled, known } = await mfa.enrolment(userId);
    const grant = grantOf({ graph, assignments: rows, scope, enrolled, now });
    return { permissions: grant.permissions, validUntil: known ? grant.validUntil : now };
  }

  async function effectivePermissions(userId: string, scope: string): Promise<string[]> {
    return cache.get(userId, scope, () => load(userId, scope));
  }

  return {
    effectivePermissions,
    effectivePermissionsOf(userIds, scope) {
      return cache.getMany(userIds, scope, (userId) => load(userId, scope));
    },
    async isAllowed(userId, scope, permission) {
      return isGranted(await effectivePermissions(userId, scope), permission);
    },
    async areAllowed(userId, scope, permissions) {
      const granted = await effectivePermissions(userId, scope);
      return permissions.map((permission) => isGranted(granted, permission));
    },
  };
}
