import { describe, expect, it } from 'vitest';
import { BUILT_IN_ROLES, PERMISSION_CATALOGUE } from '@platform/permissions';
import { PLATFORM, type Actor } from './actor.policy';
import { codesOf, concurrently } from './testing/permission.database';
import { newRoleName, newUserId } from './testing/permission.factories';
import { useTestServices } from './testing/permission.services';

describe('RoleService', () => {
  const services = useTestServices();
  const db = () => services.database.db;

  const role = (name = newRoleName(), permissions: string[] = [], inherits: string[] = []) =>
    services.roles.createRole(PLATFORM, { name, description: null, permissions, inherits });

  /** An active user holding a new role with these permissions globally. */
  async function userHolding(permissions: string[]): Promise<Actor> {
    return { id: await userWith((await role(newRoleName('held'), permissions)).id) };
  }

  /** An active user holding this role in this scope. */
  async function userWith(roleId: string, scope = ''): Promise<string> {
    const user = newUserId();
    services.users.set(user, 'active');
    await services.assignments.assign(PLATFORM, user, { id: roleId }, scope);
    return user;
  }

  const auditOf = (target: string) =>
    db().auditEntry.findMany({ where: { target }, orderBy: { seq: 'asc' } });
  const eventsOf = async (roleId: string) =>
    (await db().rbacOutboxEvent.findMany({ orderBy: { seq: 'asc' } })).filter(
      (row) => (row.envelope as { payload: { roleId?: string } }).payload.roleId === roleId,
    );

  describe('seed', () => {
    it('seeds the catalogue and the built-in roles once, however often it runs, even at once', async () => {
      expect(codesOf(await concurrently([services.roles.seed, services.roles.seed]))).toEqual([
        'ok',
        'ok',
      ]);
      expect((await services.roles.listPermissions()).map((p) => p.name)).toEqual(
        Object.keys(PERMISSION_CATALOGUE).sort(),
      );
      const builtIn = (await services.roles.listRoles()).filter((r) => r.system);
      expect(builtIn.map((r) => [r.name, r.permissions])).toEqual(
        Object.entries(BUILT_IN_ROLES).map(([name, r]) => [name, r.permissions]),
      );
    });

    it('makes a role already named like a built-in one built-in', async () => {
      await db().role.update({ where: { name: 'user' }, data: { system: false } });
      await services.roles.seed();
      expect((await db().role.findUniqueOrThrow({ where: { name: 'user' } })).system).toBe(true);
    });
  });

  describe('createRole', () => {
    it('writes the role, its audit entry and its event in one transaction', async () => {
      const parent = await role(newRoleName(), ['users:read']);
      const kicks = services.relayKicks;
      const created = await services.roles.createRole(PLATFORM, {
        name: newRoleName(),
        description: 'Audits',
        permissions: ['audit:read'],
        inherits: [parent.id],
      });
      expect(created.effectivePermissions).toEqual(['audit:read', 'users:read']);
      expect((await auditOf(`role:${created.id}`)).map((e) => [e.action, e.actorId])).toEqual([
        ['role.created', null],
      ]);
      const [event] = await eventsOf(created.id);
      expect(event?.type).toBe('rbac.role_changed');
      expect(services.relayKicks).toBe(kicks + 1);
    });

    it('gives a name to one of two roles created with it at once; the other is a CONFLICT', async () => {
      for (let round = 0; round < 10; round++) {
        const name = newRoleName();
        const outcomes = await concurrently([() => role(name), () => role(name)]);
        expect(codesOf(outcomes)).toEqual(['CONFLICT', 'ok']);
        expect(
          await db().auditEntry.count({
            where: { action: 'role.created', details: { path: ['after', 'name'], equals: name } },
          }),
        ).toBe(1);
      }
    });

    it('refuses a role granting more than its creator holds, writing nothing', async () => {
      const manager = await userHolding(['roles:manage', 'users:read']);
      const name = newRoleName();
      await expect(
        services.roles.createRole(manager, {
          name,
          description: null,
          permissions: ['users:*'],
          inherits: [],
        }),
      ).rejects.toMatchObject({ code: 'FORBIDDEN', message: /users:\*/ });
      expect(await services.store.roles.findByName(name)).toBeNull();
      const allowed = await services.roles.createRole(manager, {
        name,
        description: null,
        permissions: ['users:read'],
        inherits: [],
      });
      expect(allowed.permissions).toEqual(['users:read']);
    });
  });

  describe('updateRole', () => {
    it('refuses a parent that would create a cycle, even when two updates race to close it each way', async () => {
      for (let round = 0; round < 10; round++) {
        const [a, b] = [await role(), await role()];
        const outcomes = await concurrently([
          () => services.roles.updateRole(PLATFORM, a.id, { inherits: [b.id] }),
          () => services.roles.updateRole(PLATFORM, b.id, { inherits: [a.id] }),
        ]);
        expect(codesOf(outcomes)).toEqual(['BAD_USER_INPUT', 'ok']);
        expect(outcomes).toContainEqual(
          expect.objectContaining({ message: 'inherits: would make the role inherit from itself' }),
        );
        const graph = await services.store.roles.loadGraph();
        expect(graph.closesCycle(a.id, graph.get(a.id)!.inherits)).toBe(false);
        expect(graph.closesCycle(b.id, graph.get(b.id)!.inherits)).toBe(false);
      }
    });

    it('gives a name to one of two roles renamed to it at once; the other is a CONFLICT', async () => {
      for (let round = 0; round < 5; round++) {
        const [a, b, name] = [await role(), await role(), newRoleName()];
        const outcomes = await concurrently([
          () => services.roles.updateRole(PLATFORM, a.id, { name }),
          () => services.roles.updateRole(PLATFORM, b.id, { name }),
        ]);
        expect(codesOf(outcomes)).toEqual(['CONFLICT', 'ok']);
      }
    });

    it('shows a parent’s new permission to the very next check of every user below it', async () => {
      const parent = await role(newRoleName(), ['users:read']);
      const child = await role(newRoleName(), [], [parent.id]);
      const user = await userWith(child.id, 'tenant:a');
      expect(await services.checks.isAllowed(user, 'tenant:a', 'users:write')).toBe(false);
      await services.roles.updateRole(PLATFORM, parent.id, {
        permissions: ['users:read', 'users:write'],
      });
      expect(await services.checks.isAllowed(user, 'tenant:a', 'users:write')).toBe(true);
      await services.roles.updateRole(PLATFORM, child.id, { inherits: [] });
      expect(await services.checks.effectivePermissions(user, 'tenant:a')).toEqual([]);
    });

    it('records the whole change, then each permission granted and revoked', async () => {
      const changed = await role(newRoleName(), ['users:read', 'audit:read']);
      const actor = await userHolding(['*']);
      await services.roles.updateRole(actor, changed.id, {
        description: 'Now writes',
        permissions: ['audit:read', 'users:write'],
      });
      const entries = await auditOf(`role:${changed.id}`);
      expect(entries.map((e) => [e.action, e.actorId, e.details])).toEqual([
        ['role.created', null, expect.anything()],
        [
          'role.updated',
          actor.id,
          expect.objectContaining({
            after: expect.objectContaining({ description: 'Now writes' }) as unknown,
          }) as unknown,
        ],
        [
          'permission.granted',
          actor.id,
          { role: changed.name, before: null, after: 'users:write' },
        ],
        ['permission.revoked', actor.id, { role: changed.name, before: 'users:read', after: null }],
      ]);
      expect((await eventsOf(changed.id)).length).toBe(2);
    });
  });

  describe('deleteRole', () => {
    it('removes the role with its assignments and parent links, and the next check no longer sees it', async () => {
      const doomed = await role(newRoleName(), ['audit:read']);
      const heir = await role(newRoleName(), [], [doomed.id]);
      const user = await userWith(heir.id);
      await services.assignments.assign(PLATFORM, user, { id: doomed.id }, '');
      expect(await services.checks.isAllowed(user, '', 'audit:read')).toBe(true);

      await services.roles.deleteRole(PLATFORM, doomed.id);
      expect(await services.checks.isAllowed(user, '', 'audit:read')).toBe(false);
      expect(
        (await services.roles.getRoles([heir.id, doomed.id])).map((r) => [r.id, r.inherits]),
      ).toEqual([[heir.id, []]]);
      const [deleted] = await auditOf(`role:${doomed.id}`).then((entries) => entries.slice(-1));
      expect(deleted).toMatchObject({
        action: 'role.deleted',
        details: {
          before: { name: doomed.name, assignments: 1, inheritedBy: [heir.id] },
          after: null,
        },
      });
    });
  });
});
