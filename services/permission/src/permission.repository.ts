import type { PrismaClient } from '@platform/db';
import { createEvent } from '@platform/events';
import { enqueueEvent, type OutboxRelay } from '@platform/outbox';
import { BUILT_IN_ROLES } from '@platform/permissions';

export const RBAC_SCHEMA = 'rbac';

export interface PermissionRepository {
  /** Seeds the built-in roles; safe to run on every start of every instance. */
  ensureBuiltInRoles(): Promise<void>;
  /** Permissions granted by the user's global assignments and those in `scope`. */
  effectivePermissions(userId: string, scope: string): Promise<string[]>;
  /** Assigns a role by name (idempotent); false when no such role exists. */
  assignByName(userId: string, roleName: string, scope: string): Promise<boolean>;
}

export function createPermissionRepository(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
): PermissionRepository {
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
    async assignByName(userId, roleName, scope) {
      const assigned = await db.$transaction(async (tx) => {
        const role = await tx.role.findUnique({ where: { name: roleName } });
        if (!role) return undefined;
        const existing = await tx.roleAssignment.findUnique({
          where: { userId_roleId_scope: { userId, roleId: role.id, scope } },
        });
        if (existing) return false;
        await tx.roleAssignment.create({ data: { userId, roleId: role.id, scope } });
        await enqueueEvent(
          tx,
          RBAC_SCHEMA,
          createEvent('rbac.role_assigned', {
            userId,
            roleId: role.id,
            roleName,
            scope: scope || null,
          }),
        );
        return true;
      });
      if (assigned) relay.kick();
      return assigned !== undefined;
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
