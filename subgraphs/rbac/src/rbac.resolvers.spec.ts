import { describe, expect, it } from 'vitest';
import type { permissionV1 } from '@platform/proto';
import { createUserAccessLoader } from './rbac.resolvers';

const [ALICE, BOB] = [
  '00000000-0000-4000-8000-000000000001',
  '00000000-0000-4000-8000-000000000002',
];
const role = (id: string, name: string, permissions: string[]): permissionV1.Role => ({
  id,
  name,
  permissions,
  inherits: [],
  effectivePermissions: permissions,
  system: false,
  requiresMfa: false,
  mfaGracePeriodSeconds: 0,
  mfaRequiredSince: undefined,
});
const [VIEWER, AUDITOR] = [
  role('r1', 'viewer', ['users:read']),
  role('r2', 'auditor', ['audit:read']),
];

/** The permission service as the loader sees it: Alice is a global viewer and an auditor in tenant:a, Bob a viewer. */
function fakePermissionService() {
  const held: Record<string, { role: permissionV1.Role; scope: string }[]> = {
    [ALICE]: [
      { role: VIEWER, scope: '' },
      { role: AUDITOR, scope: 'tenant:a' },
    ],
    [BOB]: [{ role: VIEWER, scope: '' }],
  };
  const calls: string[] = [];
  const client = {
    async batchGetUserAccess(
      request: permissionV1.BatchGetUserAccessRequest,
    ): Promise<permissionV1.BatchGetUserAccessResponse> {
      calls.push(
        `${request.userIds.join(',')} ${request.withPermissions ? request.scope || 'global' : '-'}`,
      );
      const roles = new Map<string, permissionV1.Role>();
      const users = request.userIds.map((userId) => {
        const assignments = held[userId] ?? [];
        for (const a of assignments) roles.set(a.role.id, a.role);
        const granted = assignments
          .filter((a) => a.scope === '' || a.scope === request.scope)
          .flatMap((a) => a.role.permissions)
          .sort();
        return {
          userId,
          assignments: assignments.map((a) => ({
            roleId: a.role.id,
            scope: a.scope,
            assignedAt: undefined,
            mfaPending: false,
            mfaGraceEndsAt: undefined,
            withheldPermissions: [],
          })),
          permissions: request.withPermissions ? granted : [],
        };
      });
      return { users, roles: [...roles.values()] };
    },
  };
  return { client: client as unknown as Parameters<typeof createUserAccessLoader>[0], calls };
}

const names = (assigned: { role: { name: string }; scope: string }[]) =>
  assigned.map((a) => `${a.role.name}@${a.scope || 'global'}`);

describe('createUserAccessLoader', () => {
  it('answers a user’s roles and permissions asked together with one call', async () => {
    const { client, calls } = fakePermissionService();
    const access = createUserAccessLoader(client);
    const [roles, permissions] = await Promise.all([
      access.assignments(ALICE),
      access.permissions(ALICE, ''),
    ]);
    expect(names(roles)).toEqual(['viewer@global', 'auditor@tenant:a']);
    expect(permissions).toEqual(['users:read']);
    expect(calls).toEqual([`${ALICE} global`]);
  });

  it('answers a page of users’ roles with one call, each user their own', async () => {
    const { client, calls } = fakePermissionService();
    const access = createUserAccessLoader(client);
    const [alice, bob] = await Promise.all([access.assignments(ALICE), access.assignments(BOB)]);
    expect([names(alice), names(bob)]).toEqual([
      ['viewer@global', 'auditor@tenant:a'],
      ['viewer@global'],
    ]);
    expect(calls).toEqual([`${ALICE},${BOB} -`]);
  });

  it('asks once more per further scope, and each scope’s answer goes to its own field', async () => {
    const { client, calls } = fakePermissionService();
    const access = createUserAccessLoader(client);
    const [roles, global, tenant] = await Promise.all([
      access.assignments(BOB),
      access.permissions(ALICE, ''),
      access.permissions(ALICE, 'tenant:a'),
    ]);
    expect(names(roles)).toEqual(['viewer@global']);
    expect(global).toEqual(['users:read']);
    expect(tenant).toEqual(['audit:read', 'users:read']);
    expect(calls.sort()).toEqual([`${ALICE} tenant:a`, `${BOB},${ALICE} global`]);
  });
});
