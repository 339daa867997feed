import { describe, expect, it } from 'vitest';
import { BUILT_IN_ROLES, PERMISSION_CATALOGUE } from '@platform/permissions';
import { PLATFORM, type Actor } from './actor.policy';
import type { RoleInput } from './role.service';
import { createFakePermissionServices } from './testing/permission.fakes';

const USER = '00000000-0000-4000-8000-000000000001';
const MISSING = '00000000-0000-4000-8000-00000000dead';

describe('RoleService', () => {
  /** The use cases over fakes, with roles created by the platform. */
  function setup() {
    const services = createFakePermissionServices();
    const create = (name: string, permissions: string[] = [], inherits: string[] = []) =>
      services.roles.createRole(PLATFORM, { name, description: null, permissions, inherits });
    /** An active user holding these permissions globally (through a role of their own). */
    async function actorHolding(permissions: string[], id = USER): Promise<Actor> {
      services.users.users.set(id, 'active');
      const held = await create(`held-${id.slice(-4)}`, permissions);
      await services.assignments.assign(PLATFORM, id, { id: held.id }, '');
      return { id };
    }
    /** What a refused change must leave as it was. */
    const written = () => ({
      roles: services.store.data.roles,
      // A refusal is itself audited (access.refused); the change is not.
      audit: services.store.data.audit.filter((entry) => entry.action !== 'access.refused').length,
      outbox: services.store.data.outbox.length,
    });
    return { ...services, create, actorHolding, written };
  }

  const input = (overrides: Partial<RoleInput> = {}): RoleInput => ({
    name: 'viewer',
    description: null,
    permissions: [],
    inherits: [],
    ...overrides,
  });

  describe('seed', () => {
    it('seeds the catalogue and the built-in roles, and a second run changes nothing', async () => {
      const { roles, store } = setup();
      await roles.seed();
      const once = structuredClone(store.data);
      await roles.seed();
      expect(store.data).toEqual(once);
      expect((await roles.listPermissions()).map((p) => p.name)).toEqual(
        Object.keys(PERMISSION_CATALOGUE).sort(),
      );
      expect((await roles.listRoles()).map((r) => [r.name, r.system, r.permissions])).toEqual(
        Object.entries(BUILT_IN_ROLES).map(([name, r]) => [name, true, r.permissions]),
      );
      expect(store.data.audit).toEqual([]);
      expect(store.relayKicks).toBe(0);
    });

    it('makes a role already named like a built-in one built-in, keeping its permissions', async () => {
      const { roles, create } = setup();
      await create('user', ['users:read']);
      await roles.seed();
      const user = (await roles.listRoles()).find((r) => r.name === 'user');
      expect(user).toMatchObject({ system: true, permissions: ['users:read'] });
    });
  });

  describe('createRole', () => {
    it('creates the role, audits it and announces it, forgetting no cached permission', async () => {
      const { roles, store, cache, create } = setup();
      const parent = await create('reader', ['users:read']);
      const role = await roles.createRole(
        PLATFORM,
        input({ description: 'Sees', permissions: ['audit:read'], inherits: [parent.id] }),
      );
      expect(role).toMatchObject({
        name: 'viewer',
        description: 'Sees',
        system: false,
        effectivePermissions: ['audit:read', 'users:read'],
      });
      expect(store.data.audit.at(-1)).toMatchObject({
        actorId: null,
        action: 'role.created',
        target: `role:${role.id}`,
        details: { after: { name: 'viewer', permissions: ['audit:read'], inherits: [parent.id] } },
      });
      expect(store.data.outbox.at(-1)).toMatchObject({
        type: 'rbac.role_changed',
        payload: { roleId: role.id, roleName: 'viewer', change: 'created' },
      });
      expect(store.relayKicks).toBe(2);
      expect(cache.rolesForgotten).toBe(0);
    });

    it('refuses a parent that does not exist, and a name already taken, writing nothing', async () => {
      const { roles, create, written } = setup();
      await create('viewer');
      const before = written();
      await expect(roles.createRole(PLATFORM, input({ inherits: [MISSING] }))).rejects.toThrow(
        `inherits: no role has the id ${MISSING}`,
      );
      await expect(roles.createRole(PLATFORM, input())).rejects.toMatchObject({
        code: 'CONFLICT',
        message: 'A role named "viewer" already exists',
      });
      expect(written()).toEqual(before);
    });

    it('refuses a role granting more than its creator holds, through its parents too', async () => {
      const services = setup();
      const { roles, create, actorHolding, written } = services;
      const manager = await actorHolding(['roles:manage', 'users:read']);
      const deleter = await create('deleter', ['users:delete']);
      const before = written();
      for (const attempt of [
        input({ permissions: ['users:write'] }),
        input({ permissions: ['users:*'] }),
        input({ inherits: [deleter.id] }),
      ])
        await expect(roles.createRole(manager, attempt)).rejects.toMatchObject({
          code: 'FORBIDDEN',
        });
      expect(written()).toEqual(before);
      expect(
        services.store.data.audit.filter((entry) => entry.action === 'access.refused'),
      ).toHaveLength(3);
      const within = await roles.createRole(manager, input({ permissions: ['users:read'] }));
      expect(within.effectivePermissions).toEqual(['users:read']);
    });
  });

  describe('updateRole', () => {
    it('refuses a role that does not exist', async () => {
      const { roles } = setup();
      await expect(roles.updateRole(PLATFORM, MISSING, { name: 'x' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    it('refuses a parent that would create a cycle, at any depth or on itself', async () => {
      const { roles, create, written } = setup();
      const base = await create('base');
      const middle = await create('middle', [], [base.id]);
      const top = await create('top', [], [middle.id]);
      const before = written();
      for (const inherits of [[top.id], [middle.id], [base.id]])
        await expect(roles.updateRole(PLATFORM, base.id, { inherits })).rejects.toThrow(
          'inherits: would make the role inherit from itself',
        );
      await expect(roles.updateRole(PLATFORM, base.id, { inherits: [MISSING] })).rejects.toThrow(
        /^inherits: no role has the id/,
      );
      expect(written()).toEqual(before);
    });

    it('refuses emptying or changing a role that grants what the actor lacks', async () => {
      const { roles, create, actorHolding, written } = setup();
      const manager = await actorHolding(['roles:manage', 'users:read']);
      const deleters = await create('deleters', ['users:delete', 'users:read']);
      const before = written();
      for (const change of [{ permissions: [] }, { permissions: ['users:read'] }, { name: 'x-y' }])
        await expect(roles.updateRole(manager, deleters.id, change)).rejects.toMatchObject({
          code: 'FORBIDDEN',
          message: 'You cannot grant what you do not hold: users:delete',
        });
      expect(written()).toEqual(before);
      const readers = await create('readers', ['users:read']);
      await expect(
        roles.updateRole(manager, readers.id, { permissions: [] }),
      ).resolves.toMatchObject({ permissions: [] });
    });

    it('keeps a built-in role’s name and the admin role’s permissions and parents', async () => {
      const { roles, create } = setup();
      await roles.seed();
      const other = await create('other');
      const builtIn = await roles.listRoles();
      const admin = builtIn.find((r) => r.name === 'admin')!;
      const user = builtIn.find((r) => r.name === 'user')!;
      await expect(roles.updateRole(PLATFORM, user.id, { name: 'member' })).rejects.toThrow(
        'name: of a built-in role cannot change',
      );
      for (const change of [{ permissions: ['users:read'] }, { inherits: [other.id] }])
        await expect(roles.updateRole(PLATFORM, admin.id, change)).rejects.toThrow(
          'permissions: of the admin role are always "*"',
        );
      const described = await roles.updateRole(PLATFORM, admin.id, { description: 'All' });
      expect(described).toMatchObject({ name: 'admin', description: 'All', permissions: ['*'] });
      const userChanged = await roles.updateRole(PLATFORM, user.id, {
        permissions: ['users:read'],
      });
      expect(userChanged.permissions).toEqual(['users:read']);
    });

    it('refuses a new name another role has, but not the role’s own', async () => {
      const { roles, create } = setup();
      const role = await create('first');
      await create('second');
      await expect(roles.updateRole(PLATFORM, role.id, { name: 'second' })).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      expect((await roles.updateRole(PLATFORM, role.id, { name: 'first' })).name).toBe('first');
    });

    it('changes only what it is given, and audits the whole change and each permission', async () => {
      const { roles, store, create } = setup();
      const parent = await create('parent', ['audit:read']);
      const role = await create('role', ['users:read', 'roles:read'], [parent.id]);
      const updated = await roles.updateRole(PLATFORM, role.id, {
        description: 'Writes',
        permissions: ['roles:read', 'users:write'],
      });
      expect(updated).toMatchObject({
        name: 'role',
        description: 'Writes',
        permissions: ['roles:read', 'users:write'],
        inherits: [parent.id],
        effectivePermissions: ['audit:read', 'roles:read', 'users:write'],
      });
      expect(store.data.audit.slice(-3).map((e) => [e.action, e.details])).toEqual([
        [
          'role.updated',
          {
            before: {
              name: 'role',
              description: null,
              permissions: ['roles:read', 'users:read'],
              inherits: [parent.id],
            },
            after: {
              name: 'role',
              description: 'Writes',
              permissions: ['roles:read', 'users:write'],
              inherits: [parent.id],
            },
          },
        ],
        ['permission.granted', { role: 'role', before: null, after: 'users:write' }],
        ['permission.revoked', { role: 'role', before: 'users:read', after: null }],
      ]);
      expect(store.data.outbox.at(-1)?.payload).toEqual({
        roleId: role.id,
        roleName: 'role',
        change: 'updated',
      });
      const orphaned = await roles.updateRole(PLATFORM, role.id, { inherits: [] });
      expect(orphaned.effectivePermissions).toEqual(['roles:read', 'users:write']);
    });

    it('forgets every cached permission inside the change and once it committed, and not when it is refused', async () => {
      const { roles, cache, create } = setup();
      const role = await create('role', ['users:read']);
      await expect(roles.updateRole(PLATFORM, role.id, { inherits: [role.id] })).rejects.toThrow();
      expect(cache.rolesForgotten).toBe(0);
      await roles.updateRole(PLATFORM, role.id, { permissions: [] });
      expect(cache.rolesForgotten).toBe(2);
    });

    it('fails and changes nothing while cached permissions cannot be forgotten (Redis unreachable)', async () => {
      const { roles, cache, create } = setup();
      const role = await create('role', ['users:read']);
      cache.failing = true;
      await expect(roles.updateRole(PLATFORM, role.id, { permissions: [] })).rejects.toThrow(
        'ECONNREFUSED',
      );
      await expect(roles.deleteRole(PLATFORM, role.id)).rejects.toThrow('ECONNREFUSED');
      cache.failing = false;
      expect(await roles.getRoles([role.id])).toEqual([
        expect.objectContaining({ permissions: ['users:read'] }),
      ]);
    });

    it('refuses to make a role grant more than the actor holds', async () => {
      const { roles, create, actorHolding } = setup();
      const manager = await actorHolding(['roles:manage', 'users:read']);
      const role = await create('role', ['users:read']);
      await expect(
        roles.updateRole(manager, role.id, { permissions: ['users:read', 'users:delete'] }),
      ).rejects.toThrow('You cannot grant what you do not hold: users:delete');
    });
  });

  describe('deleteRole', () => {
    it('deletes the role, recording how many held it and which roles inherited it', async () => {
      const { roles, store, cache, create, users, assignments } = setup();
      const doomed = await create('doomed', ['audit:read']);
      const heir = await create('heir', [], [doomed.id]);
      users.users.set(USER, 'active');
      await assignments.assign(PLATFORM, USER, { id: doomed.id }, 'tenant:a');
      await roles.deleteRole(PLATFORM, doomed.id);
      expect(await roles.getRoles([doomed.id, heir.id])).toEqual([
        expect.objectContaining({ id: heir.id, inherits: [] }),
      ]);
      expect(store.data.audit.at(-1)).toMatchObject({
        action: 'role.deleted',
        details: {
          before: { name: 'doomed', assignments: 1, inheritedBy: [heir.id] },
          after: null,
        },
      });
      expect(store.data.outbox.at(-1)?.payload).toMatchObject({ change: 'deleted' });
      expect(cache.rolesForgotten).toBe(2);
      expect(await assignments.listAssignments([USER])).toEqual(new Map([[USER, []]]));
    });

    it('refuses a built-in role, a role that does not exist, and one granting more than the actor holds', async () => {
      const { roles, create, actorHolding } = setup();
      await roles.seed();
      const user = (await roles.listRoles()).find((r) => r.name === 'user')!;
      await expect(roles.deleteRole(PLATFORM, user.id)).rejects.toThrow(
        'id: names a built-in role, which cannot be deleted',
      );
      await expect(roles.deleteRole(PLATFORM, MISSING)).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      const manager = await actorHolding(['roles:manage']);
      const wider = await create('wider', ['users:delete']);
      await expect(roles.deleteRole(manager, wider.id)).rejects.toMatchObject({
        code: 'FORBIDDEN',
      });
    });
  });

  describe('listRoles and getRoles', () => {
    it('list roles by name with what they grant; unknown ids are left out', async () => {
      const { roles, create } = setup();
      const b = await create('bravo', ['users:read']);
      const a = await create('alpha', [], [b.id]);
      expect((await roles.listRoles()).map((r) => [r.name, r.effectivePermissions])).toEqual([
        ['alpha', ['users:read']],
        ['bravo', ['users:read']],
      ]);
      expect((await roles.getRoles([MISSING, b.id, a.id])).map((r) => r.name)).toEqual([
        'bravo',
        'alpha',
      ]);
    });
  });
});
