import { describe, expect, it } from 'vitest';
import { PLATFORM } from './actor.policy';
import { createFakePermissionServices } from './testing/permission.fakes';

const USER = '00000000-0000-4000-8000-000000000001';

describe('PermissionCheckService', () => {
  async function setup() {
    const services = createFakePermissionServices();
    services.users.users.set(USER, 'active');
    const grant = async (permissions: string[], scope = '') => {
      const role = await services.roles.createRole(PLATFORM, {
        name: `role-${services.store.data.roles.length}`,
        description: null,
        permissions,
        inherits: [],
      });
      await services.assignments.assign(PLATFORM, USER, { id: role.id }, scope);
    };
    return { ...services, grant };
  }

  it('answers what the user holds globally, plus what they hold in the scope asked about', async () => {
    const { checks, grant } = await setup();
    await grant(['users:read']);
    await grant(['audit:read'], 'tenant:a');
    expect(await checks.effectivePermissions(USER, '')).toEqual(['users:read']);
    expect(await checks.effectivePermissions(USER, 'tenant:a')).toEqual([
      'audit:read',
      'users:read',
    ]);
    expect(await checks.isAllowed(USER, 'tenant:b', 'audit:read')).toBe(false);
  });

  it('lets wildcards cover what they name, and answers several permissions in their order', async () => {
    const { checks, grant } = await setup();
    await grant(['users:*']);
    expect(
      await checks.areAllowed(USER, '', ['users:delete', 'audit:read', 'users:read', 'users:*']),
    ).toEqual([true, false, true, true]);
    await grant(['*'], 'tenant:a');
    expect(await checks.isAllowed(USER, 'tenant:a', 'audit:read')).toBe(true);
  });

  it('answers from the cache until the user’s assignments change', async () => {
    const { checks, store, grant } = await setup();
    await grant(['users:read']);
    expect(await checks.isAllowed(USER, '', 'users:read')).toBe(true);
    // Behind the cache's back: the cached answer stands.
    store.data.assignments = [];
    expect(await checks.isAllowed(USER, '', 'users:read')).toBe(true);
    await grant(['audit:read']);
    expect(await checks.effectivePermissions(USER, '')).toEqual(['audit:read']);
  });
});
