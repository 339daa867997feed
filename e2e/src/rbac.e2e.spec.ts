import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcClient } from '@platform/grpc';
import { permissionV1 } from '@platform/proto';
import { eventually, startApps, type AppCluster, type TestRun } from '@platform/testing';
import { ADMIN, startPlatform, stopPlatform, type Platform } from './platform.harness';
import { codeOf, graphql, signIn, signUp, type SignedIn } from './graphql.client';

interface RoleShape {
  id: string;
  name: string;
  permissions: string[];
  effectivePermissions: string[];
  inherits: { name: string }[];
  system: boolean;
}
const ROLE_FIELDS = 'id name permissions effectivePermissions inherits { name } system';
const CREATE_ROLE = `mutation ($input: CreateRoleInput!) { createRole(input: $input) { ${ROLE_FIELDS} } }`;
const UPDATE_ROLE = `mutation ($id: ID!, $input: UpdateRoleInput!) { updateRole(id: $id, input: $input) { ${ROLE_FIELDS} } }`;
const ASSIGN = `mutation ($userId: ID!, $roleId: ID!, $scope: String) { assignRole(userId: $userId, roleId: $roleId, scope: $scope) }`;
const UNASSIGN = `mutation ($userId: ID!, $roleId: ID!, $scope: String) { unassignRole(userId: $userId, roleId: $roleId, scope: $scope) }`;
const HAS = `query ($permission: String!, $scope: String) { hasPermission(permission: $permission, scope: $scope) }`;
const AUDIT = `query ($first: Int, $after: String) { auditLog(first: $first, after: $after) {
  edges { cursor node { id action target details createdAt actor { id email } } }
  pageInfo { hasNextPage endCursor } } }`;

interface AuditNode {
  id: string;
  action: string;
  target: string;
  details: { before?: unknown; after?: unknown } | null;
  actor: { id: string; email: string } | null;
}

describe('rbac: roles, scoped assignments, consistent checks and the audit log', () => {
  let platform: Platform | undefined;
  let run: TestRun;
  let apps: AppCluster;
  let gateway: string;
  let admin: SignedIn;
  let adminRoleId: string;

  beforeAll(async () => {
    platform = await startPlatform();
    ({ run, apps, gateway, admin } = platform);
    const roles = await asAdmin<{ roles: RoleShape[] }>(`{ roles { ${ROLE_FIELDS} } }`);
    adminRoleId = roles.roles.find((role) => role.name === 'admin')!.id;
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  async function as<T>(who: SignedIn, query: string, variables?: Record<string, unknown>) {
    return graphql<T>(gateway, query, { token: who.token, variables });
  }

  async function asAdmin<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const response = await as<T>(admin, query, variables);
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data;
  }

  async function createRole(input: Record<string, unknown>): Promise<RoleShape> {
    return (await asAdmin<{ createRole: RoleShape }>(CREATE_ROLE, { input })).createRole;
  }

  async function has(who: SignedIn, permission: string, scope?: string): Promise<boolean> {
    const response = await as<{ hasPermission: boolean }>(who, HAS, { permission, scope });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.hasPermission;
  }

  async function latestAudit(): Promise<AuditNode[]> {
    const page = await asAdmin<{ auditLog: { edges: { node: AuditNode }[] } }>(AUDIT, {
      first: 100,
    });
    return page.auditLog.edges.map((edge) => edge.node);
  }

  it('lists the permission catalogue and the built-in roles', async () => {
    const data = await asAdmin<{ permissions: { name: string }[]; roles: RoleShape[] }>(
      `{ permissions { name description } roles { ${ROLE_FIELDS} } }`,
    );
    expect(data.permissions.map((p) => p.name)).toEqual(
      expect.arrayContaining(['users:read', 'roles:manage', 'audit:read', 'notifications:send']),
    );
    expect(data.roles).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'admin', permissions: ['*'], system: true }),
        expect.objectContaining({ name: 'user', system: true }),
      ]),
    );
  });

  it('applies an inheriting role scoped and globally at once, and unassigning forbids the very next request', async () => {
    const viewer = await createRole({ name: 'viewer', permissions: ['users:read'] });
    const support = await createRole({
      name: 'support',
      description: 'Helps users',
      permissions: ['audit:read'],
      inherits: [viewer.id],
    });
    expect(support).toMatchObject({
      permissions: ['audit:read'],
      effectivePermissions: ['audit:read', 'users:read'],
      inherits: [{ name: 'viewer' }],
      system: false,
    });

    const user = await signUp(gateway, 'scoped@example.com');
    await asAdmin(ASSIGN, { userId: user.id, roleId: support.id, scope: 'tenant:acme' });
    expect(await has(user, 'users:read', 'tenant:acme')).toBe(true);
    expect(await has(user, 'users:read', 'tenant:other')).toBe(false);
    expect(await has(user, 'users:read')).toBe(false);
    const mine = await as<{
      me: { global: string[]; acme: string[]; roles: { role: { name: string }; scope: string }[] };
    }>(
      user,
      `{ me { global: permissions acme: permissions(scope: "tenant:acme") roles { role { name } scope } } }`,
    );
    expect(mine.data?.me).toEqual({
      global: [],
      acme: ['audit:read', 'users:read'],
      roles: expect.arrayContaining([
        { role: { name: 'user' }, scope: null },
        { role: { name: 'support' }, scope: 'tenant:acme' },
      ]) as unknown,
    });
    expect(codeOf(await as(user, '{ users(first: 1) { totalCount } }'))).toBe('FORBIDDEN');
    // A page of users answers each user's permissions, per scope (batched, not mixed up).
    const page = await asAdmin<{
      users: { edges: { node: { email: string; global: string[]; acme: string[] } }[] };
    }>(
      `{ users(first: 100) { edges { node { email global: permissions acme: permissions(scope: "tenant:acme") } } } }`,
    );
    const byEmail = new Map(page.users.edges.map(({ node }) => [node.email, node]));
    expect(byEmail.get('scoped@example.com')).toMatchObject({
      global: [],
      acme: ['audit:read', 'users:read'],
    });
    expect(byEmail.get(ADMIN.email)).toMatchObject({ global: ['*'], acme: ['*'] });

    // Global: applies in every scope, and to the global checks of the users subgraph.
    await asAdmin(ASSIGN, { userId: user.id, roleId: support.id });
    expect(await has(user, 'users:read')).toBe(true);
    expect(await has(user, 'audit:read', 'tenant:other')).toBe(true);
    const listed = await as<{ users: { totalCount: number } }>(
      user,
      '{ users(first: 1) { totalCount } }',
    );
    expect(listed.data?.users.totalCount).toBeGreaterThan(0);

    // Assigning twice changes nothing.
    const before = await latestAudit();
    await asAdmin(ASSIGN, { userId: user.id, roleId: support.id });
    expect(await latestAudit()).toEqual(before);

    await asAdmin(UNASSIGN, { userId: user.id, roleId: support.id });
    expect(codeOf(await as(user, '{ users(first: 1) { totalCount } }'))).toBe('FORBIDDEN');
    expect(await has(user, 'users:read', 'tenant:acme')).toBe(true);

    // A parent's new permission reaches every role and user below it at once.
    await asAdmin(UPDATE_ROLE, {
      id: viewer.id,
      input: { permissions: ['users:read', 'users:write'] },
    });
    expect(await has(user, 'users:write', 'tenant:acme')).toBe(true);
  });

  it('sees every revocation on the very next check, in a loop, on every permission-service instance', async () => {
    const role = await createRole({ name: 'flicker', permissions: ['notifications:send'] });
    const user = await signUp(gateway, 'flicker@example.com');
    // A second permission-service instance on the same database and Redis.
    const second = await startApps(run, ['permission-service']);
    const client = createGrpcClient(permissionV1.PermissionServiceService, {
      address: second.grpcAddress('permission-service'),
      internalToken: run.internalToken,
    });
    const check = async () =>
      (
        await client.checkPermission({
          userId: user.id,
          permission: 'notifications:send',
          scope: '',
        })
      ).allowed;
    try {
      for (let round = 0; round < 15; round++) {
        await asAdmin(ASSIGN, { userId: user.id, roleId: role.id });
        expect(await has(user, 'notifications:send')).toBe(true);
        expect(await check()).toBe(true);
        await asAdmin(UNASSIGN, { userId: user.id, roleId: role.id });
        expect(await has(user, 'notifications:send')).toBe(false);
        expect(await check()).toBe(false);
      }
      // A role losing the permission is seen at once too.
      await asAdmin(ASSIGN, { userId: user.id, roleId: role.id });
      expect(await check()).toBe(true);
      await asAdmin(UPDATE_ROLE, { id: role.id, input: { permissions: [] } });
      expect(await check()).toBe(false);
      expect(await has(user, 'notifications:send')).toBe(false);
    } finally {
      client.close();
      await second.stopAll();
    }
  });

  it('refuses cycles, unknown permissions, bad names, duplicates and built-in changes, changing nothing', async () => {
    const base = await createRole({ name: 'base', permissions: ['users:read'] });
    const child = await createRole({ name: 'child', inherits: [base.id] });
    const rolesBefore = await asAdmin<{ roles: RoleShape[] }>(`{ roles { ${ROLE_FIELDS} } }`);
    const auditBefore = await latestAudit();

    const attempts: [string, Record<string, unknown>, string, RegExp][] = [
      [UPDATE_ROLE, { id: base.id, input: { inherits: [child.id] } }, 'BAD_USER_INPUT', /inherits/],
      [UPDATE_ROLE, { id: base.id, input: { inherits: [base.id] } }, 'BAD_USER_INPUT', /inherits/],
      [
        CREATE_ROLE,
        { input: { name: 'odd', permissions: ['users:fly'] } },
        'BAD_USER_INPUT',
        /permissions/,
      ],
      [
        CREATE_ROLE,
        { input: { name: 'odd', permissions: ['widgets:*'] } },
        'BAD_USER_INPUT',
        /permissions/,
      ],
      [CREATE_ROLE, { input: { name: 'Bad Name' } }, 'BAD_USER_INPUT', /name/],
      [CREATE_ROLE, { input: { name: 'base' } }, 'CONFLICT', /base/],
      [UPDATE_ROLE, { id: adminRoleId, input: { name: 'root' } }, 'BAD_USER_INPUT', /name/],
      [
        UPDATE_ROLE,
        { id: adminRoleId, input: { permissions: ['users:read'] } },
        'BAD_USER_INPUT',
        /permissions/,
      ],
      ['mutation ($id: ID!) { deleteRole(id: $id) }', { id: adminRoleId }, 'BAD_USER_INPUT', /id/],
      [
        CREATE_ROLE,
        { input: { name: 'orphan', inherits: ['00000000-0000-4000-8000-000000000000'] } },
        'BAD_USER_INPUT',
        /inherits/,
      ],
    ];
    for (const [query, variables, code, message] of attempts) {
      const response = await as(admin, query, variables);
      expect({ variables, code: codeOf(response) }).toEqual({ variables, code });
      expect(response.errors?.[0]?.message).toMatch(message);
    }
    expect(await asAdmin(`{ roles { ${ROLE_FIELDS} } }`)).toEqual(rolesBefore);
    expect(await latestAudit()).toEqual(auditBefore);
  });

  it('lets nobody grant more than they hold, and keeps the last admin', async () => {
    const delegate = await createRole({
      name: 'delegate',
      permissions: ['roles:manage', 'roles:assign', 'roles:read', 'users:read'],
    });
    const manager = await signUp(gateway, 'manager@example.com');
    await asAdmin(ASSIGN, { userId: manager.id, roleId: delegate.id });
    const target = await signUp(gateway, 'target@example.com');
    const rolesBefore = await asAdmin(`{ roles { ${ROLE_FIELDS} } }`);
    const auditBefore = await latestAudit();

    const escalations: [string, Record<string, unknown>][] = [
      [CREATE_ROLE, { input: { name: 'deleter', permissions: ['users:delete'] } }],
      [CREATE_ROLE, { input: { name: 'wider', permissions: ['users:*'] } }],
      [CREATE_ROLE, { input: { name: 'everything', permissions: ['*'] } }],
      [CREATE_ROLE, { input: { name: 'heir', inherits: [adminRoleId] } }],
      [UPDATE_ROLE, { id: delegate.id, input: { permissions: ['roles:manage', 'users:write'] } }],
      [ASSIGN, { userId: target.id, roleId: adminRoleId }],
      [ASSIGN, { userId: manager.id, roleId: adminRoleId, scope: 'tenant:acme' }],
      [UNASSIGN, { userId: admin.id, roleId: adminRoleId }],
    ];
    for (const [query, variables] of escalations) {
      const response = await as(manager, query, variables);
      expect({ variables, code: codeOf(response) }).toEqual({ variables, code: 'FORBIDDEN' });
    }
    // Within what they hold, they may.
    const granted = await as<{ createRole: RoleShape }>(manager, CREATE_ROLE, {
      input: { name: 'reader', permissions: ['users:read'] },
    });
    expect(granted.data?.createRole.effectivePermissions).toEqual(['users:read']);
    await asAdmin('mutation ($id: ID!) { deleteRole(id: $id) }', {
      id: granted.data!.createRole.id,
    });

    expect(await asAdmin(`{ roles { ${ROLE_FIELDS} } }`)).toEqual(rolesBefore);
    // The reader role's creation and deletion, after one access.refused per refused attempt
    // (which changed nothing).
    const audit = await latestAudit();
    const refused = escalations.length;
    expect(audit.slice(2 + refused, 52 + refused)).toEqual(auditBefore.slice(0, 50));
    expect(audit.slice(0, 2 + refused).map((entry) => entry.action)).toEqual([
      'role.deleted',
      'role.created',
      ...escalations.map(() => 'access.refused'),
    ]);

    // The last active global admin can be neither unassigned, nor disabled, nor deleted.
    const auditBeforeAdmin = await latestAudit();
    for (const [query, variables] of [
      [UNASSIGN, { userId: admin.id, roleId: adminRoleId }],
      ['mutation ($id: ID!) { setUserStatus(id: $id, status: DISABLED) { id } }', { id: admin.id }],
      ['mutation ($id: ID!) { deleteUser(id: $id) }', { id: admin.id }],
    ] as const) {
      const response = await as(admin, query, variables);
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(response.errors?.[0]?.message).toMatch(/last active global admin/);
    }
    expect(await has(admin, 'users:delete')).toBe(true);
    expect(await latestAudit()).toEqual(auditBeforeAdmin);

    // With a second admin, the first may step down.
    await asAdmin(ASSIGN, { userId: target.id, roleId: adminRoleId });
    const stepDown = await as(admin, UNASSIGN, { userId: admin.id, roleId: adminRoleId });
    expect(stepDown.errors).toBeUndefined();
    expect(await has(admin, 'users:delete')).toBe(false);
    const newAdmin = await signIn(gateway, 'target@example.com', 'correct horse battery');
    await as(newAdmin, ASSIGN, { userId: admin.id, roleId: adminRoleId });
    expect(await has(admin, 'users:delete')).toBe(true);
  });

  it('keeps roles and the audit log from users without roles:read / audit:read, but not their own roles', async () => {
    const user = await signUp(gateway, 'plain@example.com');
    expect(codeOf(await as(user, '{ roles { id } }'))).toBe('FORBIDDEN');
    expect(codeOf(await as(user, '{ permissions { name } }'))).toBe('FORBIDDEN');
    expect(codeOf(await as(user, '{ auditLog { edges { cursor } } }'))).toBe('FORBIDDEN');
    const other = await as(user, `query ($id: ID!) { user(id: $id) { roles { scope } } }`, {
      id: admin.id,
    });
    expect(codeOf(other)).toBe('FORBIDDEN');
    const own = await as<{ me: { roles: { role: { name: string } }[] } }>(
      user,
      '{ me { roles { role { name } } } }',
    );
    expect(own.data?.me.roles).toEqual([{ role: { name: 'user' } }]);
    expect(codeOf(await as(user, CREATE_ROLE, { input: { name: 'mine' } }))).toBe('FORBIDDEN');
    expect(codeOf(await graphql(gateway, '{ roles { id } }'))).toBe('UNAUTHENTICATED');
  });

  it('audits every change with actor, target and before/after, and pages it', async () => {
    const role = await createRole({ name: 'audited', permissions: ['users:read'] });
    await asAdmin(UPDATE_ROLE, { id: role.id, input: { permissions: ['users:write'] } });
    const user = await signUp(gateway, 'audited@example.com');
    await asAdmin(ASSIGN, { userId: user.id, roleId: role.id, scope: 'tenant:x' });
    await asAdmin(UNASSIGN, { userId: user.id, roleId: role.id, scope: 'tenant:x' });

    const audit = await latestAudit();
    const actions = audit.slice(0, 6).map((entry) => `${entry.action} ${entry.target}`);
    expect(actions).toEqual([
      `role.unassigned user:${user.id}`,
      `role.assigned user:${user.id}`,
      // The user's registration: the platform gave them the user role.
      `role.assigned user:${user.id}`,
      `permission.revoked role:${role.id}`,
      `permission.granted role:${role.id}`,
      `role.updated role:${role.id}`,
    ]);
    expect(audit[0]).toMatchObject({
      actor: { id: admin.id, email: ADMIN.email },
      details: { before: { role: { name: 'audited' }, scope: 'tenant:x' }, after: null },
    });
    expect(audit[2]?.actor).toBeNull();
    expect(audit[5]?.details).toMatchObject({
      before: { permissions: ['users:read'] },
      after: { permissions: ['users:write'] },
    });

    // Pages of 2 walk the same entries in the same order.
    const walked: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 3; page++) {
      const data: {
        auditLog: {
          edges: { node: { id: string } }[];
          pageInfo: { hasNextPage: boolean; endCursor: string | null };
        };
      } = await asAdmin(AUDIT, { first: 2, after });
      walked.push(...data.auditLog.edges.map((edge) => edge.node.id));
      expect(data.auditLog.pageInfo.hasNextPage).toBe(true);
      after = data.auditLog.pageInfo.endCursor;
    }
    expect(walked).toEqual(audit.slice(0, 6).map((entry) => entry.id));
    expect(codeOf(await as(admin, AUDIT, { first: 2, after: 'not-a-cursor' }))).toBe(
      'BAD_USER_INPUT',
    );
  });

  it('removes a deleted role from assignments and from other roles, and a deleted user from roles', async () => {
    const parent = await createRole({ name: 'doomed', permissions: ['audit:read'] });
    const heir = await createRole({ name: 'heir-of-doomed', inherits: [parent.id] });
    const user = await signUp(gateway, 'doomed@example.com');
    await asAdmin(ASSIGN, { userId: user.id, roleId: parent.id });
    await asAdmin(ASSIGN, { userId: user.id, roleId: heir.id, scope: 'tenant:y' });
    expect(await has(user, 'audit:read')).toBe(true);

    await asAdmin('mutation ($id: ID!) { deleteRole(id: $id) }', { id: parent.id });
    expect(await has(user, 'audit:read')).toBe(false);
    expect(await has(user, 'audit:read', 'tenant:y')).toBe(false);
    const heirNow = await asAdmin<{ role: RoleShape }>(
      `query ($id: ID!) { role(id: $id) { ${ROLE_FIELDS} } }`,
      {
        id: heir.id,
      },
    );
    expect(heirNow.role).toMatchObject({ inherits: [], effectivePermissions: [] });
    expect(await asAdmin(`query ($id: ID!) { role(id: $id) { id } }`, { id: parent.id })).toEqual({
      role: null,
    });

    // A deleted user's assignments go (user.deleted, consumed by the permission service).
    const client = createGrpcClient(permissionV1.PermissionServiceService, {
      address: apps.grpcAddress('permission-service'),
      internalToken: run.internalToken,
    });
    try {
      expect((await client.listAssignments({ userId: user.id })).assignments).toHaveLength(2);
      await as(
        user,
        'mutation ($id: ID!, $pw: String) { deleteUser(id: $id, currentPassword: $pw) }',
        {
          id: user.id,
          pw: 'correct horse battery',
        },
      );
      await eventually(async () => {
        const { assignments } = await client.listAssignments({ userId: user.id });
        if (assignments.length > 0) throw new Error('assignments still there');
      }, 10_000);
    } finally {
      client.close();
    }
  });
});
