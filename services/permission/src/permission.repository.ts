import type { PrismaClient } from '@platform/db';
import { BUILT_IN_ROLES } from '@platform/permissions';

export const RBAC_SCHEMA = 'rbac';

export interface PermissionRepository {
  /** Seeds the built-in roles; safe to run on every start of every instance. */
  ensureBuiltInRoles(): Promise<void>;
  /** Permissions granted by the user's global assignments and those in `scope`. */
  effectivePermissions(userId: string, scope: string): Promise<string[]>;
}

export function createPermissionRepository(db: PrismaClient): PermissionRepository {
  return {
    async ensureBuiltInRoles() {
      for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
        await db.$transaction(async (tx) => {
          const saved = await tx.role.upsert({
            where: { name },
            create: { name, description: role.description, system: true },
            update: { system: true },
          });
          await tx.rolePermission.createMany({
            data: role.permissions.map((permission) => ({ roleId: saved.id, permission })),
            skipDuplicates: true,
          });
        });
      }
    },
    async effectivePermissions(userId, scope) {
      const rows = await db.rolePermission.findMany({
        where: {
          role: { assignments: { some: { userId, scope: { in: scope ? ['', scope] : [''] } } } },
        },
        select: { permission: true },
        distinct: ['permission'],
      });
      return rows.map((row) => row.permission).sort();
    },
  };
}
