import { AppError } from '@platform/errors';
import type { GrpcClient } from '@platform/grpc';
import { isValidPermission, PERMISSIONS } from '@platform/permissions';
import type { permissionV1 } from '@platform/proto';
import { requireViewer, type SubgraphContext } from '@platform/subgraph';

type PermissionClient = GrpcClient<typeof permissionV1.PermissionServiceService>;

export interface RbacContext extends SubgraphContext {
  permissions: PermissionClient;
}

function validScope(scope: string | null | undefined): string {
  if (scope == null) return '';
  if (scope.length === 0 || scope.length > 200)
    throw AppError.badInput('scope', 'must be 1 to 200 characters');
  return scope;
}

export const rbacResolvers = {
  Query: {
    async hasPermission(
      _: unknown,
      args: { permission: string; scope?: string | null },
      context: RbacContext,
    ): Promise<boolean> {
      const viewer = requireViewer(context);
      if (!isValidPermission(args.permission))
        throw AppError.badInput('permission', 'must look like resource:action');
      const { allowed } = await context.permissions.checkPermission({
        userId: viewer.userId,
        permission: args.permission,
        scope: validScope(args.scope),
      });
      return allowed;
    },
  },
  User: {
    async permissions(
      user: { id: string },
      args: { scope?: string | null },
      context: RbacContext,
    ): Promise<string[]> {
      const viewer = requireViewer(context);
      if (viewer.userId !== user.id) {
        const { allowed } = await context.permissions.checkPermission({
          userId: viewer.userId,
          permission: PERMISSIONS['roles:read'],
          scope: '',
        });
        if (!allowed) throw AppError.forbidden();
      }
      const { permissions } = await context.permissions.listEffectivePermissions({
        userId: user.id,
        scope: validScope(args.scope),
      });
      return permissions;
    },
  },
};
