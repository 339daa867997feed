import { describe, expect, it } from 'vitest';
import { createAuthorizer, type CheckPermissions } from './authorizer';

const viewer = { userId: 'u1', sessionId: 's1', expiresAt: Date.now() + 60_000 };

function recordingCheck(granted: string[]) {
  const calls: { permissions: string[]; scope: string }[] = [];
  const check: CheckPermissions = async (_userId, permissions, scope) => {
    calls.push({ permissions, scope });
    return permissions.map((permission) => granted.includes(permission));
  };
  return { calls, check };
}

describe('createAuthorizer', () => {
  it('batches the checks of one tick into one call and asks each permission once', async () => {
    const { calls, check } = recordingCheck(['users:read']);
    const authz = createAuthorizer(viewer, check);
    const answers = await Promise.all([
      authz.can('users:read'),
      authz.can('users:write'),
      authz.can('users:read'),
    ]);
    expect(answers).toEqual([true, false, true]);
    expect(await authz.can('users:write')).toBe(false);
    expect(calls).toEqual([{ permissions: ['users:read', 'users:write'], scope: '' }]);
  });

  it('refuses anonymous callers with UNAUTHENTICATED and others with FORBIDDEN', async () => {
    const { check } = recordingCheck([]);
    await expect(createAuthorizer(null, check).require('users:read')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    await expect(createAuthorizer(viewer, check).require('users:read')).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
  });

  it('lets users act on themselves without the permission', async () => {
    const { calls, check } = recordingCheck([]);
    const authz = createAuthorizer(viewer, check);
    await expect(authz.requireSelfOr('u1', 'users:delete')).resolves.toEqual(viewer);
    await expect(authz.requireSelfOr('u2', 'users:delete')).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(calls).toHaveLength(1);
  });
});
