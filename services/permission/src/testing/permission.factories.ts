// Test-only: rows for the integration tests, written straight to the database (not through
// the repositories under test). Every default is unique, so tests sharing a database never
// collide.
import { randomBytes, randomUUID } from 'node:crypto';
import type { PrismaClient } from '@platform/db';
import type { AssignmentRow } from '../assignment.repository';
import { NO_MFA_REQUIREMENT } from '../mfa.policy';
import type { RoleNode } from '../role.graph';

export const newUserId = (): string => randomUUID();

/** A role name that no other test uses. */
export const newRoleName = (prefix = 'role'): string =>
  `${prefix}-${randomBytes(5).toString('hex')}`;

export async function newRole(
  db: PrismaClient,
  overrides: Partial<Omit<RoleNode, 'id'>> = {},
): Promise<RoleNode> {
  const role = {
    name: overrides.name ?? newRoleName(),
    description: overrides.description ?? null,
    system: overrides.system ?? false,
    permissions: [...(overrides.permissions ?? [])].sort(),
    inherits: [...(overrides.inherits ?? [])].sort(),
    mfa: overrides.mfa ?? NO_MFA_REQUIREMENT,
  };
  const row = await db.role.create({
    data: {
      name: role.name,
      description: role.description,
      system: role.system,
      permissions: { create: role.permissions.map((permission) => ({ permission })) },
      parents: { create: role.inherits.map((parentId) => ({ parentId })) },
    },
  });
  return { id: row.id, ...role };
}

/** The built-in admin role of a test database (created the first time it is asked for). */
export async function adminRole(db: PrismaClient): Promise<RoleNode> {
  const existing = await db.role.findUnique({ where: { name: 'admin' } });
  if (existing)
    return {
      id: existing.id,
      name: 'admin',
      description: existing.description,
      system: true,
      permissions: ['*'],
      inherits: [],
      mfa: NO_MFA_REQUIREMENT,
    };
  return newRole(db, { name: 'admin', system: true, permissions: ['*'] });
}

export async function newAssignment(
  db: PrismaClient,
  overrides: { roleId: string; userId?: string; scope?: string; assignedAt?: Date },
): Promise<AssignmentRow> {
  const row = await db.roleAssignment.create({
    data: {
      userId: overrides.userId ?? newUserId(),
      roleId: overrides.roleId,
      scope: overrides.scope ?? '',
      ...(overrides.assignedAt && { createdAt: overrides.assignedAt }),
    },
  });
  return { userId: row.userId, roleId: row.roleId, scope: row.scope, assignedAt: row.createdAt };
}

export async function newAuditEntry(
  db: PrismaClient,
  overrides: { actorId?: string | null; action?: string; target?: string; details?: object } = {},
): Promise<{ id: string; seq: bigint }> {
  return db.auditEntry.create({
    data: {
      actorId: overrides.actorId === undefined ? newUserId() : overrides.actorId,
      action: overrides.action ?? 'role.created',
      target: overrides.target ?? `role:${randomUUID()}`,
      details: overrides.details ?? { after: null },
    },
    select: { id: true, seq: true },
  });
}
