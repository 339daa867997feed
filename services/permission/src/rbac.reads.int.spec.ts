import { describe, expect, it } from 'vitest';
import { PLATFORM } from './actor.policy';
import { newUserId } from './testing/permission.factories';
import { useTestServices } from './testing/permission.services';

// Two instances of the service on one database and Redis, each remembering the graph and
// users' assignments in its own memory: a change through one is seen by the other's very next
// read, as it is by the instance that made it.
describe('RbacReads (assignments and roles remembered per instance)', () => {
  const services = useTestServices();

  function newUser(): string {
    const id = newUserId();
    services.users.set(id, 'active');
    return id;
  }
  const createRole = (name: string, permissions: string[]) =>
    services.roles.createRole(PLATFORM, {
      name: `${name}-${Math.random().toString(36).slice(2, 8)}`,
      description: null,
      permissions,
      inherits: [],
    });
  const rolesOf = async (
    instance: Pick<typeof services, 'assignments'>,
    userIds: string[],
  ): Promise<string[][]> => {
    const byUser = await instance.assignments.listAssignments(userIds);
    return userIds.map((id) =>
      (byUser.get(id) ?? []).map(
        (a) => `${a.role.name}@${a.scope}:${a.role.effectivePermissions.join(',')}`,
      ),
    );
  };

  it('lets the next read on any instance see an assignment, an unassignment, a new role and a changed role', async () => {
    const other = services.anotherInstance();
    const [alice, bob] = [newUser(), newUser()];
    const reader = await createRole('reader', ['users:read']);
    await services.assignments.assign(PLATFORM, alice, { id: reader.id }, '');
    // Both instances remember what they read.
    expect(await rolesOf(other, [alice, bob])).toEqual([[`${reader.name}@:users:read`], []]);
    expect(await rolesOf(services, [alice, bob])).toEqual([[`${reader.name}@:users:read`], []]);

    // A new role, assigned through one instance: the other lists both at once.
    const auditor = await createRole('auditor', ['audit:read']);
    expect((await other.roles.listRoles()).map((role) => role.name)).toContain(auditor.name);
    await services.assignments.assign(PLATFORM, bob, { id: auditor.id }, 'tenant:a');
    expect(await rolesOf(other, [alice, bob])).toEqual([
      [`${reader.name}@:users:read`],
      [`${auditor.name}@tenant:a:audit:read`],
    ]);

    // A role's permissions change through the other instance.
    await other.roles.updateRole(PLATFORM, reader.id, {
      permissions: ['users:read', 'users:update'],
    });
    expect(await rolesOf(services, [alice])).toEqual([[`${reader.name}@:users:read,users:update`]]);
    expect((await services.roles.getRoles([reader.id]))[0]?.effectivePermissions).toEqual([
      'users:read',
      'users:update',
    ]);

    // Unassigned and deleted through one, gone on the other.
    await other.assignments.unassign(PLATFORM, bob, auditor.id, 'tenant:a');
    expect(await rolesOf(services, [bob])).toEqual([[]]);
    await services.roles.deleteRole(PLATFORM, reader.id);
    expect(await rolesOf(other, [alice, bob])).toEqual([[], []]);
    expect(await other.roles.getRoles([reader.id])).toEqual([]);
  });

  it('answers several users’ effective permissions in one call, each as a single check would', async () => {
    const other = services.anotherInstance();
    const [alice, bob, carol] = [newUser(), newUser(), newUser()];
    const reader = await createRole('reader', ['users:read']);
    await services.assignments.assign(PLATFORM, alice, { id: reader.id }, '');
    await services.assignments.assign(PLATFORM, carol, { id: reader.id }, 'tenant:a');
    expect(await other.checks.effectivePermissionsOf([alice, bob, carol], 'tenant:a')).toEqual([
      ['users:read'],
      [],
      ['users:read'],
    ]);
    expect(await other.checks.effectivePermissionsOf([carol], '')).toEqual([[]]);
    await services.assignments.unassign(PLATFORM, alice, reader.id, '');
    expect(await other.checks.effectivePermissionsOf([alice, carol], 'tenant:a')).toEqual([
      [],
      ['users:read'],
    ]);
  });
});
