import { describe, expect, it } from 'vitest';
import type { permissionV1 } from '@platform/proto';
import { createAuthorizer } from '@platform/subgraph';
import type { Identity } from '@platform/tokens';
import {
  createUserAccessLoader,
  rbacResolvers,
  type AssignedRole,
  type RbacContext,
} from './rbac.resolvers';

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

describe('User.roles: how the MFA policy stands on them', () => {
  const CAROL = '00000000-0000-4000-8000-000000000003';
  const pending = {
    mfaPending: true,
    mfaGraceEndsAt: new Date('2030-01-01T00:00:00Z'),
    withheldPermissions: ['audit:read'],
  };

  /** Carol holds a role she has no second factor for; `viewer` holds `permissions`. */
  function readAs(viewer: string, permissions: string[]) {
    const context = {
      viewer: { userId: viewer },
      authz: createAuthorizer({ userId: viewer } as Identity, async (_userId, asked) =>
        asked.map((permission) => permissions.includes(permission)),
      ),
      access: {
        async assignments(userId: string): Promise<AssignedRole[]> {
          return userId === CAROL
            ? [{ role: VIEWER, scope: '', assignedAt: undefined, ...pending }]
            : [];
        },
        async permissions() {
          return [];
        },
      },
    } as unknown as RbacContext;
    return rbacResolvers.User.roles({ id: CAROL }, undefined, context);
  }

  it('shows it to the user themself and to a holder of users:read', async () => {
    for (const [viewer, permissions] of [
      [CAROL, []],
      [ALICE, ['roles:read', 'users:read']],
    ] as const)
      expect(await readAs(viewer, [...permissions])).toEqual([
        expect.objectContaining({
          mfaPending: true,
          mfaGraceEndsAt: pending.mfaGraceEndsAt,
          withheldPermissions: ['audit:read'],
        }),
      ]);
  });

  it('answers "nothing pending" to a holder of roles:read alone (it would tell their second factor)', async () => {
    expect(await readAs(ALICE, ['roles:read'])).toEqual([
      {
        role: VIEWER,
        scope: null,
        assignedAt: undefined,
        mfaPending: false,
        mfaGraceEndsAt: null,
        withheldPermissions: [],
      },
    ]);
  });
});
