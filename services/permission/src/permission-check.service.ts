import { isGranted } from '@platform/permissions';
import type { AssignmentRepository } from './assignment.repository';
import type { PermissionCache } from './permission.cache';

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
  assignments: Pick<AssignmentRepository, 'effectivePermissions'>;
  cache: Pick<PermissionCache, 'get' | 'getMany'>;
}): PermissionCheckService {
  const { assignments, cache } = deps;

  async function effectivePermissions(userId: string, scope: string): Promise<string[]> {
    return cache.get(userId, scope, () => assignments.effectivePermissions(userId, scope));
  }

  return {
    effectivePermissions,
    effectivePermissionsOf(userIds, scope) {
      return cache.getMany(userIds, scope, (userId) =>
        assignments.effectivePermissions(userId, scope),
      );
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
