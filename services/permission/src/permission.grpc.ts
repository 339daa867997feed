import { isUuid } from '@platform/validation';
import { AppError } from '@platform/errors';
import type { UnaryHandlers } from '@platform/grpc';
import { grants, isValidPermission } from '@platform/permissions';
import type { permissionV1 } from '@platform/proto';
import type { PermissionCache } from './permission.cache';
import type { PermissionRepository } from './permission.repository';

const MAX_BATCH = 100;

export function createPermissionHandlers(deps: {
  roles: PermissionRepository;
  cache: PermissionCache;
}): UnaryHandlers<typeof permissionV1.PermissionServiceService> {
  const { roles, cache } = deps;

  async function effective(userId: string, scope: string): Promise<string[]> {
    if (!isUuid(userId)) throw AppError.badInput('userId', 'must be a user id');
    return cache.get(userId, scope, () => roles.effectivePermissions(userId, scope));
  }

  function requireValid(permission: string): string {
    if (!isValidPermission(permission))
      throw AppError.badInput('permission', 'must look like resource:action');
    return permission;
  }

  return {
    async checkPermission(request) {
      const required = requireValid(request.permission);
      const granted = await effective(request.userId, request.scope);
      return { allowed: granted.some((permission) => grants(permission, required)) };
    },
    async checkPermissions(request) {
      if (request.permissions.length > MAX_BATCH)
        throw AppError.badInput('permissions', `at most ${MAX_BATCH} per call`);
      const required = request.permissions.map(requireValid);
      const granted = await effective(request.userId, request.scope);
      return {
        allowed: required.map((needed) => granted.some((permission) => grants(permission, needed))),
      };
    },
    async assignRole(request) {
      if (!isUuid(request.userId)) throw AppError.badInput('userId', 'must be a user id');
      if (!(await roles.assignByName(request.userId, request.roleName, request.scope))) {
        throw AppError.notFound('Role');
      }
      // The very next check must see the new role.
      await cache.forgetUser(request.userId);
      return {};
    },
    async listEffectivePermissions(request) {
      return { permissions: await effective(request.userId, request.scope) };
    },
  };
}
