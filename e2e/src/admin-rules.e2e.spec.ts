import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@platform/testing';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { codeOf, graphql, signUp, type GraphQLResponse, type SignedIn } from './graphql.client';

const ROUNDS = 5;
const CREATE_ROLE = `mutation ($input: CreateRoleInput!) { createRole(input: $input) { id } }`;
const UPDATE_ROLE = `mutation ($id: ID!, $input: UpdateRoleInput!) {
  updateRole(id: $id, input: $input) { id permissions } }`;
const ASSIGN = `mutation ($userId: ID!, $roleId: ID!) { assignRole(userId: $userId, roleId: $roleId) }`;
const UNASSIGN = `mutation ($userId: ID!, $roleId: ID!) { unassignRole(userId: $userId, roleId: $roleId) }`;
const DISABLE = `mutation ($id: ID!) { setUserStatus(id: $id, status: DISABLED) { id status } }`;
const ENABLE = `mutation ($id: ID!) { setUserStatus(id: $id, status: ACTIVE) { id status } }`;
const DELETE = `mutation ($id: ID!) { deleteUser(id: $id) }`;
const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken } }`;
const AUDIT = `{ auditLog(first: 50) { edges { node { action target details actor { id email } } } } }`;
const USERS = `{ users(first: 100) { edges { node { id status roles { role { name } scope } } } } }`;

interface AuditNode {
  action: string;
  target: string;
  details: Record<string, unknown> | null;
  actor: { id: string; email: string } | null;
}

describe('admin rules: the last admin stays under concurrency, nobody acts on a stronger user', () => {
  let platform: Platform | undefined;
  let gateway: string;
  /** The only active global admin between tests. */
  let admin: SignedIn;
  let adminRoleId: string;
  let emails = 0;

  beforeAll(async () => {
    platform = await startPlatform();
    ({ gateway, admin } = platform);
    const { roles } = await asAdmin<{ roles: { id: string; name: string }[] }>(
      '{ roles { id name } }',
    );
    adminRoleId = roles.find((role) => role.name === 'admin')!.id;
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  const as = <T>(who: SignedIn, query: string, variables?: Record<string, unknown>) =>
    graphql<T>(gateway, query, { token: who.token, variables });

  async function asAdmin<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const response = await as<T>(admin, query, variables);
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data;
  }

  const newUser = () => signUp(gateway, `admin-rules-${++emails}@example.com`);
  const me = (token: string) =>
    graphql<{ me: { id: string } | null }>(gateway, '{ me { id } }', { token });

  async function userWith(permissions: string[]): Promise<SignedIn> {
    const { createRole } = await asAdmin<{ createRole: { id: string } }>(CREATE_ROLE, {
      input: { name: `holder-${++emails}`, permissions },
    });
    const user = await newUser();
    await asAdmin(ASSIGN, { userId: user.id, roleId: createRole.id });
    return user;
  }

  /** The admin and a newcomer made admin: exactly two active global admins. */
  async function twoAdmins(): Promise<[SignedIn, SignedIn]> {
    const newcomer = await newUser();
    await asAdmin(ASSIGN, { userId: newcomer.id, roleId: adminRoleId });
    return [admin, newcomer];
  }

  /** The active users holding admin globally, as `who` sees them. */
  async function activeAdmins(who: SignedIn): Promise<string[]> {
    const response = await as<{
      users: {
        edges: {
          node: { id: string; status: string; roles: { role: { name: string }; scope: string }[] };
        }[];
      };
    }>(who, USERS);
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.users.edges
      .map((edge) => edge.node)
      .filter(
        (user) =>
          user.status === 'ACTIVE' &&
          user.roles.some((held) => held.role.name === 'admin' && held.scope === null),
      )
      .map((user) => user.id);
  }

  /**
   * Runs both calls at once; exactly one removal may succeed, the other is refused with a
   * client error naming the rule (never a 5xx). Answers the index of the call that succeeded.
   */
  async function exactlyOneWins(
    calls: [() => Promise<GraphQLResponse<unknown>>, () => Promise<GraphQLResponse<unknown>>],
  ): Promise<0 | 1> {
    const outcomes = await Promise.all(calls.map((call) => call()));
    const won = outcomes.map((outcome) => outcome.errors === undefined);
    expect(won.filter(Boolean)).toHaveLength(1);
    const lost = outcomes[won[0] ? 1 : 0]!;
    expect(['BAD_USER_INPUT', 'UNAUTHENTICATED', 'NOT_FOUND']).toContain(codeOf(lost));
    return won[0] ? 0 : 1;
  }

  async function latestAudit(who: SignedIn = admin): Promise<AuditNode[]> {
    const response = await as<{ auditLog: { edges: { node: AuditNode }[] } }>(who, AUDIT);
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.auditLog.edges.map((edge) => edge.node);
  }

  it('leaves exactly one active admin when two admins disable each other at once, every time', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await twoAdmins();
      const winner = await exactlyOneWins([
        () => as(a, DISABLE, { id: b.id }),
        () => as(b, DISABLE, { id: a.id }),
      ]);
      admin = winner === 0 ? a : b;
      expect(await activeAdmins(admin)).toEqual([admin.id]);
    }
  });

  it('leaves exactly one active admin when one is disabled while the other is unassigned, every time', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await twoAdmins();
      const winner = await exactlyOneWins([
        () => as(a, DISABLE, { id: b.id }),
        () => as(b, UNASSIGN, { userId: a.id, roleId: adminRoleId }),
      ]);
      admin = winner === 0 ? a : b;
      expect(await activeAdmins(admin)).toEqual([admin.id]);
    }
  });

  it('leaves exactly one active admin when one is deleted while the other is disabled, every time', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await twoAdmins();
      const winner = await exactlyOneWins([
        () => as(a, DELETE, { id: b.id }),
        () => as(b, DISABLE, { id: a.id }),
      ]);
      admin = winner === 0 ? a : b;
      expect(await activeAdmins(admin)).toEqual([admin.id]);
    }
  });

  it('leaves no working session to sign-ins racing the account being disabled, every time', async () => {
    let raced = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const email = `admin-rules-${++emails}@example.com`;
      const user = await signUp(gateway, email);
      // Four sign-ins under way (each hashing its password) when the account is disabled: at
      // most five of one account's passwords are checked at once from one address.
      const logins = Array.from({ length: 4 }, (_, n) =>
        delay(n * 5).then(() =>
          graphql<{ login: { accessToken: string } }>(gateway, LOGIN, {
            variables: { email, password: 'correct horse battery' },
          }),
        ),
      );
      await delay(10);
      expect(
        (await asAdmin<{ setUserStatus: { status: string } }>(DISABLE, { id: user.id }))
          .setUserStatus.status,
      ).toBe('DISABLED');
      const disabledAt = performance.now();
      const answers = await Promise.all(
        logins.map((login) => login.then((answer) => ({ answer, at: performance.now() }))),
      );
      raced += answers.filter(({ at }) => at > disabledAt).length;
      const tokens = answers.flatMap(({ answer }) => {
        if (answer.data?.login) return [answer.data.login.accessToken];
        // A sign-in that lost the race is refused as any other that opens nothing.
        expect(answer.errors?.[0]).toMatchObject({
          message: 'Invalid email or password',
          extensions: { code: 'UNAUTHENTICATED' },
        });
        return [];
      });
      // Every token handed out, before or during the change, is refused after it.
      for (const token of [user.token, ...tokens]) {
        expect(codeOf(await me(token))).toBe('UNAUTHENTICATED');
      }
    }
    // The sign-ins did race the change: some finished after it returned.
    expect(raced).toBeGreaterThan(0);
  });

  it('ends the sessions of an account disabled while the auth service was down once it is back, without a retry', async () => {
    const user = await newUser();
    expect((await me(user.token)).data?.me?.id).toBe(user.id);
    await platform!.apps.stop('auth-service');
    try {
      const refused = await as(admin, DISABLE, { id: user.id });
      // The status committed; the lock-out call could not be made, and the caller is told so.
      expect(codeOf(refused)).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await platform!.apps.start('auth-service');
      // The users subgraph reaches the restarted service again after its back-off (503 meanwhile).
      await eventually(async () => {
        expect((await as(admin, '{ mySessions { id } }')).errors).toBeUndefined();
      }, 30_000);
    }
    // The status change's event ends the sessions once the auth service consumes it.
    await eventually(async () => {
      expect(codeOf(await me(user.token))).toBe('UNAUTHENTICATED');
    }, 30_000);
    const { user: seen } = await asAdmin<{ user: { status: string } }>(
      'query ($id: ID!) { user(id: $id) { status } }',
      { id: user.id },
    );
    expect(seen.status).toBe('DISABLED');
  });

  it('refuses a users:write and users:delete holder disabling or deleting an admin, and audits the attempts', async () => {
    const manager = await userWith(['users:read', 'users:write', 'users:delete']);
    for (const query of [DISABLE, DELETE]) {
      const response = await as(manager, query, { id: admin.id });
      expect(codeOf(response)).toBe('FORBIDDEN');
      expect(response.errors?.[0]?.message).toBe(
        'You cannot act on a user who holds permissions you do not: *',
      );
    }
    expect(await activeAdmins(admin)).toEqual([admin.id]);
    const refused = (await latestAudit()).slice(0, 2);
    expect(refused.map(({ actor, ...entry }) => ({ ...entry, actor: actor?.id }))).toEqual(
      ['user.deleted', 'user.disabled'].map((attempted) => ({
        action: 'access.refused',
        target: `user:${admin.id}`,
        details: { attempted, missing: ['*'] },
        actor: manager.id,
      })),
    );

    // A user whose permissions the manager's cover is fair game.
    const plain = await newUser();
    expect((await as(manager, DISABLE, { id: plain.id })).errors).toBeUndefined();
  });

  it('refuses a roles:assign holder changing which roles an admin holds', async () => {
    const assigner = await userWith(['roles:assign', 'users:read']);
    const { createRole } = await asAdmin<{ createRole: { id: string } }>(CREATE_ROLE, {
      input: { name: `reader-${++emails}`, permissions: ['users:read'] },
    });
    await asAdmin(ASSIGN, { userId: admin.id, roleId: createRole.id });
    for (const query of [UNASSIGN, ASSIGN]) {
      const response = await as(assigner, query, { userId: admin.id, roleId: createRole.id });
      expect(codeOf(response)).toBe('FORBIDDEN');
    }
    // Someone no stronger than the assigner is fair game.
    const plain = await newUser();
    expect(
      (await as(assigner, ASSIGN, { userId: plain.id, roleId: createRole.id })).errors,
    ).toBeUndefined();
  });

  it('refuses a roles:manage holder emptying or changing a role that grants what they lack', async () => {
    const manager = await userWith(['roles:manage', 'roles:read']);
    const { createRole: auditors } = await asAdmin<{ createRole: { id: string } }>(CREATE_ROLE, {
      input: { name: 'auditors', permissions: ['audit:read'] },
    });
    for (const input of [{ permissions: [] }, { permissions: ['roles:read'] }]) {
      const response = await as(manager, UPDATE_ROLE, { id: auditors.id, input });
      expect(codeOf(response)).toBe('FORBIDDEN');
      expect(response.errors?.[0]?.message).toBe(
        'You cannot grant what you do not hold: audit:read',
      );
    }
    const { role } = await asAdmin<{ role: { permissions: string[] } }>(
      'query ($id: ID!) { role(id: $id) { permissions } }',
      { id: auditors.id },
    );
    expect(role.permissions).toEqual(['audit:read']);
    expect((await latestAudit())[0]).toMatchObject({
      action: 'access.refused',
      target: `role:${auditors.id}`,
      details: { attempted: 'role.updated', missing: ['audit:read'] },
    });
  });

  it('records disabling, enabling and deleting a user with who did it', async () => {
    const user = await newUser();
    await asAdmin(DISABLE, { id: user.id });
    await asAdmin(ENABLE, { id: user.id });
    await asAdmin(DELETE, { id: user.id });
    const entries = (await latestAudit()).filter(
      (entry) => entry.target === `user:${user.id}` && entry.action.startsWith('user.'),
    );
    expect(entries.map(({ action, actor }) => ({ action, actor: actor?.id }))).toEqual([
      { action: 'user.deleted', actor: admin.id },
      { action: 'user.enabled', actor: admin.id },
      { action: 'user.disabled', actor: admin.id },
    ]);
  });

  it('shows the actor of an audit entry, and their email, only to a caller who may read users', async () => {
    const auditor = await userWith(['audit:read']);
    const readingAuditor = await userWith(['audit:read', 'users:read']);
    const byAdmin = (entries: AuditNode[]) => entries.filter((e) => e.action === 'role.assigned');
    const [seenByAuditor, seenByReader] = [
      await latestAudit(auditor),
      await latestAudit(readingAuditor),
    ];
    expect(byAdmin(seenByAuditor).length).toBeGreaterThan(0);
    expect(byAdmin(seenByAuditor).every((entry) => entry.actor === null)).toBe(true);
    expect(JSON.stringify(seenByAuditor)).not.toContain('@example.com');
    const actors = byAdmin(seenByReader).map((entry) => entry.actor);
    expect(actors.some((actor) => actor?.id === admin.id && actor.email.includes('@'))).toBe(true);
  });
});
