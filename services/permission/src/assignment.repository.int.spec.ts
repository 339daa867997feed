import { describe, expect, it } from 'vitest';
import { createAssignmentRepository } from './assignment.repository';
import { twiceAtOnce, useTestDatabase } from './testing/permission.database';
import { adminRole, newAssignment, newRole, newUserId } from './testing/permission.factories';

describe('AssignmentRepository', () => {
  const database = useTestDatabase();
  const assignments = () => createAssignmentRepository(database.db);

  describe('insert', () => {
    it('answers true for a new assignment and false for one held already', async () => {
      const role = await newRole(database.db);
      const key = { userId: newUserId(), roleId: role.id, scope: '' };
      expect(await assignments().insert(key)).toBe(true);
      expect(await assignments().insert(key)).toBe(false);
      expect(await assignments().insert({ ...key, scope: 'tenant:acme' })).toBe(true);
      expect(await assignments().listForUsers([key.userId])).toHaveLength(2);
    });

    it('makes exactly one of two inserts of one assignment at once new', async () => {
      const role = await newRole(database.db);
      for (let round = 0; round < 20; round++) {
        const key = { userId: newUserId(), roleId: role.id, scope: round % 2 ? 'tenant:x' : '' };
        expect(await twiceAtOnce(() => assignments().insert(key))).toEqual([false, true]);
        expect(await assignments().listForUsers([key.userId])).toHaveLength(1);
      }
    });
  });

  describe('delete', () => {
    it('answers true when it removed the assignment, false when there was none', async () => {
      const row = await newAssignment(database.db, { roleId: (await newRole(database.db)).id });
      const key = { userId: row.userId, roleId: row.roleId, scope: row.scope };
      expect(await assignments().delete({ ...key, scope: 'tenant:other' })).toBe(false);
      expect(await assignments().delete(key)).toBe(true);
      expect(await assignments().delete(key)).toBe(false);
    });

    it('lets exactly one of two deletes of one assignment at once remove it', async () => {
      const role = await newRole(database.db);
      for (let round = 0; round < 20; round++) {
        const row = await newAssignment(database.db, { roleId: role.id });
        const key = { userId: row.userId, roleId: row.roleId, scope: row.scope };
        expect(await twiceAtOnce(() => assignments().delete(key))).toEqual([false, true]);
      }
    });
  });

  describe('listForUsers', () => {
    it('lists only these users’ assignments, oldest first, then by role id', async () => {
      const [first, second, third] = await Promise.all([
        newRole(database.db),
        newRole(database.db),
        newRole(database.db),
      ]);
      const [user, other, stranger] = [newUserId(), newUserId(), newUserId()];
      const at = (ms: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms));
      await newAssignment(database.db, { userId: user, roleId: first.id, assignedAt: at(2) });
      await newAssignment(database.db, {
        userId: user,
        roleId: second.id,
        scope: 't',
        assignedAt: at(1),
      });
      await newAssignment(database.db, { userId: other, roleId: third.id, assignedAt: at(1) });
      await newAssignment(database.db, { userId: other, roleId: first.id, assignedAt: at(1) });
      await newAssignment(database.db, { userId: stranger, roleId: first.id });

      const rows = await assignments().listForUsers([user, other]);
      const atOne = [
        [user, second.id, 't', at(1)],
        [other, third.id, '', at(1)],
        [other, first.id, '', at(1)],
      ].sort((a, b) => String(a[1]).localeCompare(String(b[1])));
      expect(rows.map((row) => [row.userId, row.roleId, row.scope, row.assignedAt])).toEqual([
        ...atOne,
        [user, first.id, '', at(2)],
      ]);
      expect(await assignments().listForUsers([])).toEqual([]);
    });
  });

  describe('deleteForUser', () => {
    it('removes the user’s assignments in every scope and nobody else’s', async () => {
      const role = await newRole(database.db);
      const [user, other] = [newUserId(), newUserId()];
      await newAssignment(database.db, { userId: user, roleId: role.id });
      await newAssignment(database.db, { userId: user, roleId: role.id, scope: 'tenant:x' });
      await newAssignment(database.db, { userId: other, roleId: role.id });
      await assignments().deleteForUser(user);
      expect(await assignments().listForUsers([user])).toEqual([]);
      expect(await assignments().listForUsers([other])).toHaveLength(1);
    });
  });

  describe('countForRole', () => {
    it('counts a role’s assignments in every scope', async () => {
      const role = await newRole(database.db);
      expect(await assignments().countForRole(role.id)).toBe(0);
      await newAssignment(database.db, { roleId: role.id });
      await newAssignment(database.db, { roleId: role.id, scope: 'tenant:x' });
      await newAssignment(database.db, { roleId: (await newRole(database.db)).id });
      expect(await assignments().countForRole(role.id)).toBe(2);
    });
  });

  describe('holds and holderIds', () => {
    it('see a role held in exactly that scope, by name', async () => {
      const admin = await adminRole(database.db);
      const [global, scoped, plain] = [newUserId(), newUserId(), newUserId()];
      await newAssignment(database.db, { userId: global, roleId: admin.id });
      await newAssignment(database.db, { userId: scoped, roleId: admin.id, scope: 'tenant:x' });
      await newAssignment(database.db, { userId: plain, roleId: (await newRole(database.db)).id });

      expect(await assignments().holds(global, 'admin', '')).toBe(true);
      expect(await assignments().holds(scoped, 'admin', '')).toBe(false);
      expect(await assignments().holds(scoped, 'admin', 'tenant:x')).toBe(true);
      expect(await assignments().holds(plain, 'admin', '')).toBe(false);

      const others = await assignments().holderIds('admin', '', plain);
      expect(others).toContain(global);
      expect(others).not.toContain(scoped);
      expect(await assignments().holderIds('admin', '', global)).not.toContain(global);
      expect(await assignments().holderIds('admin', 'tenant:x', global)).toEqual([scoped]);
    });
  });
});
