import { describe, expect, it } from 'vitest';
import type { CallContext } from '@platform/grpc';
import { PLATFORM } from './actor.policy';
import { createPermissionHandlers } from './permission.grpc';
import { createFakePermissionServices } from './testing/permission.fakes';

const CALL: CallContext = { correlationId: 'test', userId: undefined, sessionId: undefined };
const ALICE = '00000000-0000-4000-8000-000000000001';

describe('permission gRPC handlers', () => {
  async function setup() {
    const services = createFakePermissionServices();
    services.users.users.set(ALICE, 'active');
    await services.roles.seed();
    return { ...services, handlers: createPermissionHandlers(services) };
  }

  it('pages the audit log newest first with the cursors it hands out', async () => {
    const { handlers } = await setup();
    for (const name of ['first', 'second', 'third'])
      await handlers.createRole(
        { actorId: '', name, permissions: [], inherits: [], description: undefined },
        CALL,
      );
    const pageOne = await handlers.listAuditEntries({ first: 2, after: '' }, CALL);
    expect(pageOne.hasNextPage).toBe(true);
    expect(pageOne.entries.map((e): unknown => e.details?.['after'])).toMatchObject([
      { name: 'third' },
      { name: 'second' },
    ]);
    const pageTwo = await handlers.listAuditEntries(
      { first: 2, after: pageOne.entries.at(-1)!.cursor },
      CALL,
    );
    expect(pageTwo.hasNextPage).toBe(false);
    expect(pageTwo.entries.map((e) => [e.actorId, e.action])).toEqual([['', 'role.created']]);
    // The cursors' format is the one clients already hold.
    expect(Buffer.from(pageTwo.entries[0]!.cursor, 'base64url').toString()).toBe('audit:1');
  });

  it('answers users’ access as the single-user calls do, each role once', async () => {
    const { handlers, assignments } = await setup();
    const BOB = '00000000-0000-4000-8000-000000000002';
    const { role: auditor } = await handlers.createRole(
      {
        actorId: '',
        name: 'auditor',
        permissions: ['audit:read'],
        inherits: [],
        description: undefined,
      },
      CALL,
    );
    await assignments.assign(PLATFORM, ALICE, { name: 'user' }, '');
    await assignments.assign(PLATFORM, ALICE, { id: auditor!.id }, 'tenant:a');
    const access = await handlers.batchGetUserAccess(
      { userIds: [ALICE, BOB], withPermissions: true, scope: 'tenant:a' },
      CALL,
    );
    const single = await handlers.listAssignments({ userId: ALICE }, CALL);
    const byId = new Map(access.roles.map((role) => [role.id, role]));
    expect(access.roles.map((role) => role.name).sort()).toEqual(['auditor', 'user']);
    expect(
      access.users[0]!.assignments.map(({ roleId, ...rest }) => ({
        role: byId.get(roleId),
        ...rest,
      })),
    ).toEqual(single.assignments);
    expect(access.users.map((user) => [user.userId, user.permissions])).toEqual([
      [
        ALICE,
        (await handlers.listEffectivePermissions({ userId: ALICE, scope: 'tenant:a' }, CALL))
          .permissions,
      ],
      [BOB, []],
    ]);
    await expect(
      handlers.batchGetUserAccess({ userIds: ['nope'], withPermissions: false, scope: '' }, CALL),
    ).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('sets a role’s MFA requirement and shows it on the role and on assignments', async () => {
    const { handlers } = await setup();
    const { role } = await handlers.createRole(
      {
        actorId: '',
        name: 'ops',
        permissions: ['users:read'],
        inherits: [],
        description: undefined,
      },
      CALL,
    );
    for (const gracePeriodSeconds of [-1, 1.5, 90 * 24 * 3600 + 1])
      await expect(
        handlers.setRoleMfaRequirement(
          { actorId: '', id: role!.id, required: true, gracePeriodSeconds },
          CALL,
        ),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'gracePeriodSeconds' });
    const set = await handlers.setRoleMfaRequirement(
      { actorId: '', id: role!.id, required: true, gracePeriodSeconds: 0 },
      CALL,
    );
    expect(set.role).toMatchObject({
      requiresMfa: true,
      mfaGracePeriodSeconds: 0,
      mfaRequiredSince: expect.any(Date) as unknown,
    });
    await handlers.assignRole(
      { actorId: '', userId: ALICE, roleId: role!.id, roleName: '', scope: '' },
      CALL,
    );
    const { assignments } = await handlers.listAssignments({ userId: ALICE }, CALL);
    expect(assignments.find((a) => a.role?.id === role!.id)).toMatchObject({
      mfaPending: true,
      mfaGraceEndsAt: undefined,
      withheldPermissions: ['users:read'],
    });
    expect(
      (await handlers.checkPermission({ userId: ALICE, scope: '', permission: 'users:read' }, CALL))
        .allowed,
    ).toBe(false);
  });

  it('refuses a cursor that is not an audit cursor, even one PostgreSQL could not compare', async () => {
    const { handlers } = await setup();
    for (const after of [
      'not-a-cursor',
      Buffer.from(`audit:${'9'.repeat(19)}`).toString('base64url'),
    ])
      await expect(handlers.listAuditEntries({ first: 2, after }, CALL)).rejects.toThrow(
        'after: is not a valid cursor',
      );
  });

  it('refuses malformed requests naming the field, before any use case runs', async () => {
    const { handlers, store } = await setup();
    const role = {
      actorId: '',
      name: 'viewer',
      permissions: [],
      inherits: [],
      description: undefined,
    };
    const attempts: [() => Promise<unknown>, string][] = [
      [() => handlers.createRole({ ...role, actorId: 'me' }, CALL), 'actorId: must be an id'],
      [() => handlers.createRole({ ...role, name: 'Bad Name' }, CALL), 'name: must be 2-50'],
      [() => handlers.createRole({ ...role, description: 'x'.repeat(501) }, CALL), 'description: '],
      [() => handlers.createRole({ ...role, permissions: ['users:fly'] }, CALL), 'permissions: '],
      [() => handlers.createRole({ ...role, inherits: ['x'] }, CALL), 'inherits: must be an id'],
      [
        () =>
          handlers.assignRole(
            { actorId: '', userId: ALICE, roleId: '', roleName: '', scope: '' },
            CALL,
          ),
        'roleId: is required',
      ],
      [
        () =>
          handlers.assignRole(
            { actorId: '', userId: ALICE, roleId: '', roleName: 'user', scope: ' ' },
            CALL,
          ),
        'scope: ',
      ],
      [
        () => handlers.unassignRole({ actorId: '', userId: 'x', roleId: ALICE, scope: '' }, CALL),
        'userId: must be an id',
      ],
      [
        () => handlers.checkPermission({ userId: ALICE, permission: 'nope', scope: '' }, CALL),
        'permission: ',
      ],
      [
        () =>
          handlers.checkPermissions(
            { userId: ALICE, permissions: Array<string>(101).fill('users:read'), scope: '' },
            CALL,
          ),
        'permissions: at most 100 per call',
      ],
      [
        () => handlers.batchListEffectivePermissions({ userIds: [ALICE, 'x'], scope: '' }, CALL),
        'userId: must be an id',
      ],
      [
        () => handlers.listAuditEntries({ first: 0, after: '' }, CALL),
        'first: must be between 1 and 100',
      ],
    ];
    const commits = store.commits;
    for (const [attempt, message] of attempts)
      await expect(attempt()).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        message: expect.stringContaining(message) as unknown,
      });
    expect(store.commits).toBe(commits);
  });

  it('maps an empty actor id to the platform and any other to a user who may grant only what they hold', async () => {
    const { handlers } = await setup();
    const { role } = await handlers.createRole(
      {
        actorId: '',
        name: 'viewer',
        description: '  Sees  ',
        permissions: ['users:read', 'users:read'],
        inherits: [],
      },
      CALL,
    );
    expect(role).toMatchObject({
      name: 'viewer',
      description: 'Sees',
      permissions: ['users:read'],
      system: false,
    });
    await expect(
      handlers.assignRole(
        { actorId: ALICE, userId: ALICE, roleId: role!.id, roleName: '', scope: '' },
        CALL,
      ),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(
      await handlers.assignRole(
        { actorId: '', userId: ALICE, roleId: '', roleName: 'viewer', scope: 'tenant:a' },
        CALL,
      ),
    ).toEqual({ changed: true });
    expect(
      await handlers.batchListEffectivePermissions(
        { userIds: [ALICE, ALICE], scope: 'tenant:a' },
        CALL,
      ),
    ).toEqual({
      users: [
        { userId: ALICE, permissions: ['users:read'] },
        { userId: ALICE, permissions: ['users:read'] },
      ],
    });
    const cleared = await handlers.updateRole(
      { actorId: '', id: role!.id, description: '', permissions: undefined, inherits: undefined },
      CALL,
    );
    expect(cleared.role?.description).toBeUndefined();
  });
});
