import type { Prisma } from '@platform/db';

/** A user's role in a scope ("" is the global scope: it applies in every scope). */
export interface AssignmentKey {
  userId: string;
  roleId: string;
  scope: string;
}

export interface AssignmentRow extends AssignmentKey {
  assignedAt: Date;
}

/** The queries on role assignments, and on what they grant. */
export interface AssignmentRepository {
  /** True when the assignment is new; an existing one is left as it is. */
  insert(assignment: AssignmentKey): Promise<boolean>;
  /** True when there was such an assignment. */
  delete(assignment: AssignmentKey): Promise<boolean>;
  /** Every assignment of these users, oldest first (then by role id). */
  listForUsers(userIds: readonly string[]): Promise<AssignmentRow[]>;
  /** Every assignment of the user goes. */
  deleteForUser(userId: string): Promise<void>;
  countForRole(roleId: string): Promise<number>;
  /** Whether the user holds the role with this name in exactly this scope. */
  holds(userId: string, roleName: string, scope: string): Promise<boolean>;
  /** The users other than `exceptUserId` holding the role with this name in exactly this scope. */
  holderIds(roleName: string, scope: string, exceptUserId: string): Promise<string[]>;
}

/** Queries through `db`: the client, or the transaction client of a change. */
export function createAssignmentRepository(db: Prisma.TransactionClient): AssignmentRepository {
  return {
    async insert({ userId, roleId, scope }) {
      const created = await db.roleAssignment.createMany({
        data: [{ userId, roleId, scope }],
        skipDuplicates: true,
      });
      return created.count > 0;
    },

    async delete({ userId, roleId, scope }) {
      const removed = await db.roleAssignment.deleteMany({ where: { userId, roleId, scope } });
      return removed.count > 0;
    },

    async listForUsers(userIds) {
      const rows = await db.roleAssignment.findMany({
        where: { userId: { in: [...userIds] } },
        orderBy: [{ createdAt: 'asc' }, { roleId: 'asc' }],
      });
      return rows.map(({ userId, roleId, scope, createdAt }) => ({
        userId,
        roleId,
        scope,
        assignedAt: createdAt,
      }));
    },

    async deleteForUser(userId) {
      await db.roleAssignment.deleteMany({ where: { userId } });
    },

    async countForRole(roleId) {
      return db.roleAssignment.count({ where: { roleId } });
    },

    async holds(userId, roleName, scope) {
      const row = await db.roleAssignment.findFirst({
        where: { role: { name: roleName }, scope, userId },
      });
      return row !== null;
    },

    async holderIds(roleName, scope, exceptUserId) {
      const rows = await db.roleAssignment.findMany({
        where: { role: { name: roleName }, scope, NOT: { userId: exceptUserId } },
        select: { userId: true },
      });
      return rows.map((row) => row.userId);
    },
  };
}
