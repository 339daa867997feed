import { describe, expect, it } from 'vitest';
import { eventually, holdOpen } from '@platform/testing';
import { createRoleRepository } from './role.repository';
import { newAssignment, newRole, newRoleName, newUserId } from './testing/permission.factories';
import { codesOf, concurrently, useTestDatabase } from './testing/permission.database';

describe('RoleRepository', () => {
  const database = useTestDatabase();
  const roles = () => createRoleRepository(database.db);

  describe('lockGraph', () => {
    it('makes a second transaction wait until the first one ends', async () => {
      const { db } = database;
      const order: string[] = [];
      const first = await holdOpen((hold) =>
        db.$transaction(async (tx) => {
          await createRoleRepository(tx).lockGraph();
          await hold();
          order.push('first ends');
        }),
      );
      const second = db.$transaction(async (tx) => {
        await createRoleRepository(tx).lockGraph();
        order.push('second holds the lock');
      });
      // The second is waiting for the advisory lock: let the first end only then.
      await eventually(async () => {
        const [row] = await db.$queryRawUnsafe<{ waiting: bigint }[]>(
          `SELECT count(*) AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        );
        expect(row?.waiting).toBe(1n);
      });
      await Promise.all([first.release(), second]);
      expect(order).toEqual(['first ends', 'second holds the lock']);
    });

    it('is released when the transaction ends, even by failing', async () => {
      const failed = database.db.$transaction(async (tx) => {
        await createRoleRepository(tx).lockGraph();
        throw new Error('rolled back');
      });
      await expect(failed).rejects.toThrow('rolled back');
      await database.db.$transaction((tx) => createRoleRepository(tx).lockGraph());
    });
  });

  describe('loadGraph', () => {
    it('loads every role with its direct permissions and parents, sorted', async () => {
      const parent = await newRole(database.db, { permissions: ['users:read'] });
      const other = await newRole(database.db);
      const child = await newRole(database.db, {
        permissions: ['users:write', 'audit:read'],
        inherits: [parent.id, other.id],
      });
      const graph = await roles().loadGraph();
      expect(graph.get(child.id)).toEqual({
        ...child,
        permissions: ['audit:read', 'users:write'],
        inherits: [parent.id, other.id].sort(),
      });
      expect(graph.view(graph.get(child.id)!).effectivePermissions).toEqual([
        'audit:read',
        'users:read',
        'users:write',
      ]);
    });
  });

  describe('findByName', () => {
    it('finds a role by its exact name, and nothing for another', async () => {
      const role = await newRole(database.db, { permissions: ['users:read'] });
      expect(await roles().findByName(role.name)).toEqual(role);
      expect(await roles().findByName(role.name.toUpperCase())).toBeNull();
      expect(await roles().findByName(newRoleName())).toBeNull();
    });
  });

  describe('create', () => {
    it('creates a role with its permissions and parents, not built-in unless asked', async () => {
      const parent = await newRole(database.db);
      const name = newRoleName();
      const created = await roles().create({
        name,
        description: 'Reads',
        permissions: ['users:read', 'audit:read'],
        inherits: [parent.id],
      });
      expect(created).toEqual({
        id: expect.any(String) as unknown,
        name,
        description: 'Reads',
        system: false,
        permissions: ['audit:read', 'users:read'],
        inherits: [parent.id],
        mfa: { required: false, gracePeriodSeconds: 0, requiredSince: null },
      });
      expect(await roles().findByName(name)).toEqual(created);
      const builtIn = await roles().create({
        name: newRoleName(),
        description: null,
        permissions: [],
        inherits: [],
        system: true,
      });
      expect(builtIn.system).toBe(true);
    });

    it('keeps names unique even when two creates of one name race (the database refuses one)', async () => {
      for (let round = 0; round < 10; round++) {
        const name = newRoleName();
        const create = () =>
          roles().create({ name, description: null, permissions: [], inherits: [] });
        expect(codesOf(await concurrently([create, create]))).toEqual(['INTERNAL', 'ok']);
        expect(await database.db.role.count({ where: { name } })).toBe(1);
      }
    });
  });

  describe('rename', () => {
    it('sets the name and the description, leaving permissions and parents', async () => {
      const parent = await newRole(database.db);
      const role = await newRole(database.db, {
        permissions: ['users:read'],
        inherits: [parent.id],
      });
      const name = newRoleName();
      await roles().rename(role.id, { name, description: 'New' });
      expect(await roles().findByName(name)).toEqual({ ...role, name, description: 'New' });
      await roles().rename(role.id, { name, description: null });
      expect((await roles().findByName(name))?.description).toBeNull();
    });
  });

  describe('addPermissions and removePermissions', () => {
    it('add and remove exactly the given permissions; an empty list changes nothing', async () => {
      const role = await newRole(database.db, { permissions: ['users:read', 'users:write'] });
      await roles().addPermissions(role.id, ['audit:read', 'roles:read']);
      await roles().removePermissions(role.id, ['users:write', 'roles:read']);
      await roles().addPermissions(role.id, []);
      await roles().removePermissions(role.id, []);
      expect((await roles().findByName(role.name))?.permissions).toEqual([
        'audit:read',
        'users:read',
      ]);
    });
  });

  describe('replaceParents', () => {
    it('replaces the parents, and an empty list leaves none', async () => {
      const a = await newRole(database.db);
      const b = await newRole(database.db);
      const c = await newRole(database.db);
      const role = await newRole(database.db, { inherits: [a.id, b.id] });
      await roles().replaceParents(role.id, [b.id, c.id]);
      expect((await roles().findByName(role.name))?.inherits).toEqual([b.id, c.id].sort());
      await roles().replaceParents(role.id, []);
      expect((await roles().findByName(role.name))?.inherits).toEqual([]);
    });
  });

  describe('childIds', () => {
    it('names the roles inheriting a role directly, not their children', async () => {
      const parent = await newRole(database.db);
      const child = await newRole(database.db, { inherits: [parent.id] });
      await newRole(database.db, { inherits: [child.id] });
      expect(await roles().childIds(parent.id)).toEqual([child.id]);
      expect(await roles().childIds((await newRole(database.db)).id)).toEqual([]);
    });
  });

  describe('delete', () => {
    it('takes the role’s assignments and its place among other roles’ parents with it', async () => {
      const doomed = await newRole(database.db, { permissions: ['audit:read'] });
      const other = await newRole(database.db);
      const heir = await newRole(database.db, { inherits: [doomed.id, other.id] });
      const user = newUserId();
      await newAssignment(database.db, { roleId: doomed.id, userId: user });
      await newAssignment(database.db, { roleId: other.id, userId: user });
      await roles().delete(doomed.id);
      const graph = await roles().loadGraph();
      expect(graph.get(doomed.id)).toBeUndefined();
      expect(graph.get(heir.id)?.inherits).toEqual([other.id]);
      const left = await database.db.roleAssignment.findMany({ where: { userId: user } });
      expect(left.map((row) => row.roleId)).toEqual([other.id]);
    });
  });

  describe('markSystem', () => {
    it('marks a role built-in', async () => {
      const role = await newRole(database.db);
      await roles().markSystem(role.name);
      expect((await roles().findByName(role.name))?.system).toBe(true);
    });
  });

  describe('upsertPermission and listPermissions', () => {
    it('add a catalogue entry or update its description, and list the catalogue by name', async () => {
      await roles().upsertPermission('widgets:read', 'Read widgets');
      await roles().upsertPermission('apples:eat', 'Eat apples');
      await roles().upsertPermission('widgets:read', 'Read any widget');
      expect(await roles().listPermissions()).toEqual([
        { name: 'apples:eat', description: 'Eat apples' },
        { name: 'widgets:read', description: 'Read any widget' },
      ]);
    });

    it('survive two upserts of one new entry racing', async () => {
      for (let round = 0; round < 10; round++) {
        const name = `race:${round}`;
        const outcomes = await concurrently([
          () => roles().upsertPermission(name, 'first'),
          () => roles().upsertPermission(name, 'second'),
        ]);
        expect(codesOf(outcomes)).toEqual(['ok', 'ok']);
        const row = await database.db.permissionDefinition.findUnique({ where: { name } });
        expect(['first', 'second']).toContain(row?.description);
      }
    });
  });
});
