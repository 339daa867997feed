import type { Prisma, PrismaClient } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent, type EventPayload } from '@platform/events';
import { enqueueEvent, processOnce, type OutboxRelay } from '@platform/outbox';
import { BUILT_IN_ROLES, PERMISSION_CATALOGUE } from '@platform/permissions';
import { RoleGraph, type RoleNode, type RoleView } from './role.graph';

export const RBAC_SCHEMA = 'rbac';
export const ADMIN_ROLE = 'admin';

type Tx = Prisma.TransactionClient;

/**
 * Called inside the change's transaction with what the role would grant and the scope: throws
 * (FORBIDDEN) when the actor may not grant that. Absent for the platform's own changes.
 */
export type GrantGuard = (granted: string[], scope: string) => Promise<void>;

export interface Actor {
  /** Null: the platform itself. */
  id: string | null;
  guard?: GrantGuard | undefined;
}

export interface RoleInput {
  name: string;
  description: string | null;
  permissions: string[];
  inherits: string[];
}

export interface RoleChange {
  name?: string | undefined;
  description?: string | null | undefined;
  permissions?: string[] | undefined;
  inherits?: string[] | undefined;
}

export interface AssignmentView {
  role: RoleView;
  scope: string;
  assignedAt: Date;
}

export interface AuditRow {
  id: string;
  seq: bigint;
  actorId: string | null;
  action: string;
  target: string;
  details: unknown;
  createdAt: Date;
}

export interface RoleRepository {
  /** Seeds the permission catalogue and the built-in roles; safe on every start. */
  seed(): Promise<void>;
  listPermissions(): Promise<{ name: string; description: string }[]>;
  listRoles(): Promise<RoleView[]>;
  getRoles(ids: string[]): Promise<RoleView[]>;
  createRole(actor: Actor, input: RoleInput): Promise<RoleView>;
  updateRole(actor: Actor, id: string, change: RoleChange): Promise<RoleView>;
  deleteRole(actor: Actor, id: string): Promise<void>;
  /** True when the assignment is new. NOT_FOUND for an unknown role. */
  assign(
    actor: Actor,
    userId: string,
    role: { id?: string; name?: string },
    scope: string,
  ): Promise<boolean>;
  /** True when there was such an assignment. */
  unassign(actor: Actor, userId: string, roleId: string, scope: string): Promise<boolean>;
  /** Each user's assignments, oldest first, in one query. */
  listAssignments(userIds: string[]): Promise<Map<string, AssignmentView[]>>;
  /** Permissions granted by the user's global assignments and those in `scope`, sorted. */
  effectivePermissions(userId: string, scope: string): Promise<string[]>;
  /** The other users holding admin globally. */
  otherGlobalAdmins(userId: string): Promise<string[]>;
  holdsGlobalAdmin(userId: string): Promise<boolean>;
  /** A deleted user's assignments go (once per event id); true when this call did it. */
  removeUser(userId: string, consumer: string, eventId: string): Promise<boolean>;
  /** Newest first; `afterSeq` continues below a page's last entry. */
  listAudit(first: number, afterSeq: bigint | null): Promise<AuditRow[]>;
}

export interface RoleRepositoryOptions {
  db: PrismaClient;
  relay: Pick<OutboxRelay, 'kick'>;
  /**
   * Refuses to take the last active global admin away (called under the lock that
   * serialises admin changes, with the remaining admins' ids).
   */
  isAnyActive: (userIds: string[]) => Promise<boolean>;
}

const ROLE_INCLUDE = { permissions: true, parents: true } as const;
type RoleRow = Prisma.RoleGetPayload<{ include: typeof ROLE_INCLUDE }>;

function toNode(row: RoleRow): RoleNode {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    system: row.system,
    permissions: row.permissions.map((p) => p.permission).sort(),
    inherits: row.parents.map((p) => p.parentId).sort(),
  };
}

async function loadGraph(tx: Tx | PrismaClient): Promise<RoleGraph> {
  const rows = await tx.role.findMany({ include: ROLE_INCLUDE });
  return new RoleGraph(rows.map(toNode));
}

/** Role-graph and admin changes run one at a time (they are rare); checks never wait. */
async function lockRoles(tx: Tx): Promise<void> {
  await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('rbac.roles'))`);
}

const roleSummary = (role: RoleNode) => ({
  name: role.name,
  description: role.description,
  permissions: role.permissions,
  inherits: role.inherits,
});

async function audit(
  tx: Tx,
  actor: Actor,
  action: string,
  target: string,
  details: { before?: unknown; after?: unknown; [key: string]: unknown },
): Promise<void> {
  await tx.auditEntry.create({
    data: { actorId: actor.id, action, target, details: details as Prisma.InputJsonValue },
  });
}

async function roleChanged(
  tx: Tx,
  role: RoleNode,
  change: EventPayload<'rbac.role_changed'>['change'],
): Promise<void> {
  await enqueueEvent(
    tx,
    RBAC_SCHEMA,
    createEvent('rbac.role_changed', { roleId: role.id, roleName: role.name, change }),
  );
}

/** Records an assignment's change: its audit entry and its event, in the change's transaction. */
async function assignmentChanged(
  tx: Tx,
  actor: Actor,
  change: 'assigned' | 'unassigned',
  userId: string,
  role: RoleNode,
  scope: string,
): Promise<void> {
  const assignment = { role: { id: role.id, name: role.name }, scope: scope || null };
  await audit(tx, actor, `role.${change}`, `user:${userId}`, {
    before: change === 'assigned' ? null : assignment,
    after: change === 'assigned' ? assignment : null,
  });
  const payload = {
    userId,
    roleId: role.id,
    roleName: role.name,
    scope: scope || null,
    actorId: actor.id,
  };
  await enqueueEvent(
    tx,
    RBAC_SCHEMA,
    change === 'assigned'
      ? createEvent('rbac.role_assigned', payload)
      : createEvent('rbac.role_unassigned', payload),
  );
}

function requireParents(graph: RoleGraph, inherits: readonly string[]): void {
  for (const id of inherits)
    if (!graph.get(id)) throw AppError.badInput('inherits', `no role has the id ${id}`);
}

export function createRoleRepository(options: RoleRepositoryOptions): RoleRepository {
  const { db, relay } = options;

  /** Runs a change and wakes the outbox relay once it has committed. */
  async function change<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const result = await db.$transaction(work);
    relay.kick();
    return result;
  }

  async function requireNotLastAdmin(tx: Tx, userId: string): Promise<void> {
    const others = await tx.roleAssignment.findMany({
      where: { role: { name: ADMIN_ROLE }, scope: '', NOT: { userId } },
      select: { userId: true },
    });
    if (!(await options.isAnyActive(others.map((row) => row.userId))))
      throw AppError.badInput('userId', 'is the last active global admin');
  }

  return {
    async seed() {
      await db.$transaction(async (tx) => {
        await lockRoles(tx);
        for (const [name, description] of Object.entries(PERMISSION_CATALOGUE))
          await tx.permissionDefinition.upsert({
            where: { name },
            create: { name, description },
            update: { description },
          });
        for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
          const existing = await tx.role.findUnique({ where: { name } });
          if (existing) {
            if (!existing.system) await tx.role.update({ where: { name }, data: { system: true } });
            continue;
          }
          await tx.role.create({
            data: {
              name,
              description: role.description,
              system: true,
              permissions: { create: role.permissions.map((permission) => ({ permission })) },
            },
          });
        }
      });
    },

    async listPermissions() {
      return db.permissionDefinition.findMany({ orderBy: { name: 'asc' } });
    },

    async listRoles() {
      return (await loadGraph(db)).all();
    },

    async getRoles(ids) {
      const graph = await loadGraph(db);
      return ids.flatMap((id) => {
        const role = graph.get(id);
        return role ? [graph.view(role)] : [];
      });
    },

    async createRole(actor, input) {
      return change(async (tx) => {
        await lockRoles(tx);
        const graph = await loadGraph(tx);
        requireParents(graph, input.inherits);
        await actor.guard?.(graph.grantedBy(input.permissions, input.inherits), '');
        if (await tx.role.findUnique({ where: { name: input.name } }))
          throw AppError.conflict(`A role named "${input.name}" already exists`);
        const row = await tx.role.create({
          data: {
            name: input.name,
            description: input.description,
            permissions: { create: input.permissions.map((permission) => ({ permission })) },
            parents: { create: input.inherits.map((parentId) => ({ parentId })) },
          },
          include: ROLE_INCLUDE,
        });
        const role = toNode(row);
        await audit(tx, actor, 'role.created', `role:${role.id}`, { after: roleSummary(role) });
        await roleChanged(tx, role, 'created');
        return new RoleGraph([...graph.all(), role]).view(role);
      });
    },

    async updateRole(actor, id, update) {
      return change(async (tx) => {
        await lockRoles(tx);
        const graph = await loadGraph(tx);
        const before = graph.get(id);
        if (!before) throw AppError.notFound('Role');
        const after: RoleNode = {
          ...before,
          name: update.name ?? before.name,
          description: update.description === undefined ? before.description : update.description,
          permissions: update.permissions ?? before.permissions,
          inherits: update.inherits ?? before.inherits,
        };
        if (before.system && after.name !== before.name)
          throw AppError.badInput('name', 'of a built-in role cannot change');
        if (before.name === ADMIN_ROLE && (update.permissions || update.inherits))
          throw AppError.badInput('permissions', 'of the admin role are always "*"');
        requireParents(graph, after.inherits);
        if (graph.closesCycle(id, after.inherits))
          throw AppError.badInput('inherits', 'would make the role inherit from itself');
        await actor.guard?.(graph.grantedBy(after.permissions, after.inherits), '');
        if (
          after.name !== before.name &&
          (await tx.role.findUnique({ where: { name: after.name } }))
        )
          throw AppError.conflict(`A role named "${after.name}" already exists`);

        await tx.role.update({
          where: { id },
          data: { name: after.name, description: after.description },
        });
        const granted = after.permissions.filter((p) => !before.permissions.includes(p));
        const revoked = before.permissions.filter((p) => !after.permissions.includes(p));
        if (revoked.length)
          await tx.rolePermission.deleteMany({
            where: { roleId: id, permission: { in: revoked } },
          });
        if (granted.length)
          await tx.rolePermission.createMany({
            data: granted.map((permission) => ({ roleId: id, permission })),
          });
        if (update.inherits) {
          await tx.roleParent.deleteMany({ where: { roleId: id } });
          await tx.roleParent.createMany({
            data: after.inherits.map((parentId) => ({ roleId: id, parentId })),
          });
        }

        const target = `role:${id}`;
        await audit(tx, actor, 'role.updated', target, {
          before: roleSummary(before),
          after: roleSummary(after),
        });
        for (const permission of granted)
          await audit(tx, actor, 'permission.granted', target, {
            role: after.name,
            before: null,
            after: permission,
          });
        for (const permission of revoked)
          await audit(tx, actor, 'permission.revoked', target, {
            role: after.name,
            before: permission,
            after: null,
          });
        await roleChanged(tx, after, 'updated');
        const roles = graph.all().map((role) => (role.id === id ? after : role));
        return new RoleGraph(roles).view(after);
      });
    },

    async deleteRole(actor, id) {
      await change(async (tx) => {
        await lockRoles(tx);
        const graph = await loadGraph(tx);
        const role = graph.get(id);
        if (!role) throw AppError.notFound('Role');
        if (role.system)
          throw AppError.badInput('id', 'names a built-in role, which cannot be deleted');
        await actor.guard?.(graph.view(role).effectivePermissions, '');
        const assignments = await tx.roleAssignment.count({ where: { roleId: id } });
        const children = await tx.roleParent.findMany({ where: { parentId: id } });
        // Assignments and parent links go with the role (ON DELETE CASCADE).
        await tx.role.delete({ where: { id } });
        await audit(tx, actor, 'role.deleted', `role:${id}`, {
          before: { ...roleSummary(role), assignments, inheritedBy: children.map((c) => c.roleId) },
          after: null,
        });
        await roleChanged(tx, role, 'deleted');
      });
    },

    async assign(actor, userId, which, scope) {
      return change(async (tx) => {
        const graph = await loadGraph(tx);
        const role = which.id
          ? graph.get(which.id)
          : graph.all().find((candidate) => candidate.name === which.name);
        if (!role) throw AppError.notFound('Role');
        await actor.guard?.(graph.view(role).effectivePermissions, scope);
        const created = await tx.roleAssignment.createMany({
          data: [{ userId, roleId: role.id, scope }],
          skipDuplicates: true,
        });
        if (created.count === 0) return false;
        await assignmentChanged(tx, actor, 'assigned', userId, role, scope);
        return true;
      });
    },

    async unassign(actor, userId, roleId, scope) {
      return change(async (tx) => {
        const graph = await loadGraph(tx);
        const role = graph.get(roleId);
        if (!role) throw AppError.notFound('Role');
        await actor.guard?.(graph.view(role).effectivePermissions, scope);
        if (role.name === ADMIN_ROLE && scope === '') {
          await lockRoles(tx);
          const held = await tx.roleAssignment.findUnique({
            where: { userId_roleId_scope: { userId, roleId, scope } },
          });
          if (held) await requireNotLastAdmin(tx, userId);
        }
        const removed = await tx.roleAssignment.deleteMany({ where: { userId, roleId, scope } });
        if (removed.count === 0) return false;
        await assignmentChanged(tx, actor, 'unassigned', userId, role, scope);
        return true;
      });
    },

    async listAssignments(userIds) {
      const [graph, rows] = await Promise.all([
        loadGraph(db),
        db.roleAssignment.findMany({
          where: { userId: { in: userIds } },
          orderBy: [{ createdAt: 'asc' }, { roleId: 'asc' }],
        }),
      ]);
      const byUser = new Map<string, AssignmentView[]>(userIds.map((id) => [id, []]));
      for (const row of rows) {
        const role = graph.get(row.roleId);
        if (role)
          byUser
            .get(row.userId)
            ?.push({ role: graph.view(role), scope: row.scope, assignedAt: row.createdAt });
      }
      return byUser;
    },

    async effectivePermissions(userId, scope) {
      // The user's roles (global, and in the scope) and all their ancestors; UNION (not UNION
      // ALL) ends the recursion even if a cycle ever slipped in.
      const rows = await db.$queryRawUnsafe<{ permission: string }[]>(
        `WITH RECURSIVE granted(role_id) AS (
           SELECT role_id FROM "rbac"."role_assignments"
            WHERE user_id = $1::uuid AND scope = ANY($2::text[])
           UNION
           SELECT rp.parent_id FROM "rbac"."role_parents" rp JOIN granted g ON rp.role_id = g.role_id
         )
         SELECT DISTINCT permission FROM "rbac"."role_permissions" JOIN granted USING (role_id)
          ORDER BY permission`,
        userId,
        scope ? ['', scope] : [''],
      );
      return rows.map((row) => row.permission);
    },

    async otherGlobalAdmins(userId) {
      const rows = await db.roleAssignment.findMany({
        where: { role: { name: ADMIN_ROLE }, scope: '', NOT: { userId } },
        select: { userId: true },
      });
      return rows.map((row) => row.userId);
    },

    async holdsGlobalAdmin(userId) {
      const row = await db.roleAssignment.findFirst({
        where: { role: { name: ADMIN_ROLE }, scope: '', userId },
      });
      return row !== null;
    },

    async removeUser(userId, consumer, eventId) {
      return change(async (tx) => {
        if (!(await processOnce(tx, RBAC_SCHEMA, consumer, eventId))) return false;
        const graph = await loadGraph(tx);
        const assignments = await tx.roleAssignment.findMany({ where: { userId } });
        await tx.roleAssignment.deleteMany({ where: { userId } });
        for (const assignment of assignments)
          await audit(tx, { id: null }, 'role.unassigned', `user:${userId}`, {
            reason: 'user deleted',
            before: {
              role: { id: assignment.roleId, name: graph.get(assignment.roleId)?.name ?? null },
              scope: assignment.scope || null,
            },
            after: null,
          });
        return true;
      });
    },

    async listAudit(first, afterSeq) {
      return db.auditEntry.findMany({
        where: afterSeq === null ? {} : { seq: { lt: afterSeq } },
        orderBy: { seq: 'desc' },
        take: first,
      });
    },
  };
}
