import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcClient } from '@platform/grpc';
import { notificationV1, userV1 } from '@platform/proto';
import { eventually, type AppCluster, type TestRun } from '@platform/testing';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { codeOf, graphql, signIn, signUp, type SignedIn } from './graphql.client';

type Session = SignedIn;

describe('profiles: reading and managing users through the gateway', () => {
  let platform: Platform | undefined;
  let run: TestRun;
  let apps: AppCluster;
  let gateway: string;
  let admin: Session;

  beforeAll(async () => {
    platform = await startPlatform();
    ({ run, apps, gateway, admin } = platform);
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  async function notificationCount(recipientId: string): Promise<number> {
    const notifications = createGrpcClient(notificationV1.NotificationServiceService, {
      address: apps.grpcAddress('notification-service'),
      internalToken: run.internalToken,
    });
    try {
      const page = await notifications.listNotifications({
        recipientId,
        first: 1,
        after: '',
        unreadOnly: false,
        withUnreadCount: false,
      });
      return page.totalCount;
    } finally {
      notifications.close();
    }
  }

  const login = (email: string, password: string) => signIn(gateway, email, password);
  const register = (email: string) => signUp(gateway, email);

  it('gives the bootstrap admin every permission', async () => {
    const response = await graphql<{ hasPermission: boolean }>(
      gateway,
      '{ hasPermission(permission: "users:delete") }',
      {
        token: admin.token,
      },
    );
    expect(response.data?.hasPermission).toBe(true);
  });

  it('lets an admin page through 120 users with stable cursors; others get FORBIDDEN', async () => {
    const users = createGrpcClient(userV1.UserServiceService, {
      address: apps.grpcAddress('user-service'),
      internalToken: run.internalToken,
    });
    for (let index = 0; index < 120; index++) {
      await users.createUser({
        email: `paged-${String(index).padStart(3, '0')}@example.com`,
        displayName: `Paged ${index}`,
      });
    }
    users.close();

    const seen: string[] = [];
    let after: string | null = null;
    let total: number | undefined;
    do {
      const page: {
        data?: {
          users: {
            edges: { node: { email: string } }[];
            pageInfo: { hasNextPage: boolean; endCursor: string | null };
            totalCount: number;
          };
        } | null;
      } = await graphql(
        gateway,
        'query ($after: String) { users(first: 50, after: $after, search: "paged-") { edges { node { email } } pageInfo { hasNextPage endCursor } totalCount } }',
        {
          token: admin.token,
          variables: { after },
        },
      );
      seen.push(...page.data!.users.edges.map((edge) => edge.node.email));
      total = page.data!.users.totalCount;
      after = page.data!.users.pageInfo.hasNextPage ? page.data!.users.pageInfo.endCursor : null;
    } while (after);
    expect(total).toBe(120);
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect(seen).toEqual([...seen].sort());

    const someone = await register('nosy@example.com');
    expect(
      codeOf(await graphql(gateway, '{ users { totalCount } }', { token: someone.token })),
    ).toBe('FORBIDDEN');
    expect(
      codeOf(
        await graphql(gateway, `{ user(id: "${admin.id}") { email } }`, { token: someone.token }),
      ),
    ).toBe('FORBIDDEN');
    const self = await graphql<{ user: { email: string } }>(
      gateway,
      `{ user(id: "${someone.id}") { email } }`,
      {
        token: someone.token,
      },
    );
    expect(self.data?.user.email).toBe('nosy@example.com');
  });

  it('updates a profile and validates it', async () => {
    const me = await register('edit@example.com');
    const updated = await graphql<{ updateProfile: { displayName: string } }>(
      gateway,
      'mutation { updateProfile(input: { displayName: "  Edited Name " }) { displayName } }',
      { token: me.token },
    );
    expect(updated.data?.updateProfile.displayName).toBe('Edited Name');
    const refused = await graphql(
      gateway,
      'mutation { updateProfile(input: { displayName: "" }) { displayName } }',
      {
        token: me.token,
      },
    );
    expect(refused.errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'displayName',
    });
    const read = await graphql<{ me: { displayName: string } }>(gateway, '{ me { displayName } }', {
      token: me.token,
    });
    expect(read.data?.me.displayName).toBe('Edited Name');
  });

  it('changes a password: the other sessions end, this one stays', async () => {
    const first = await register('pw@example.com');
    const second = await login('pw@example.com', 'correct horse battery');
    const wrong = await graphql(
      gateway,
      'mutation { changePassword(currentPassword: "not it at all", newPassword: "a brand new secret") }',
      { token: first.token },
    );
    expect(wrong.errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'currentPassword',
    });
    const changed = await graphql(
      gateway,
      'mutation { changePassword(currentPassword: "correct horse battery", newPassword: "a brand new secret") }',
      { token: first.token },
    );
    expect(changed.data).toEqual({ changePassword: true });
    expect(codeOf(await graphql(gateway, '{ me { id } }', { token: second.token }))).toBe(
      'UNAUTHENTICATED',
    );
    expect(
      (await graphql<{ me: { id: string } }>(gateway, '{ me { id } }', { token: first.token })).data
        ?.me.id,
    ).toBe(first.id);
    await expect(login('pw@example.com', 'correct horse battery')).rejects.toThrow(
      /UNAUTHENTICATED/,
    );
    await expect(login('pw@example.com', 'a brand new secret')).resolves.toMatchObject({
      id: first.id,
    });
  });

  it('disabling a user ends their sessions and stops sign-in; only users:write may do it', async () => {
    const target = await register('disable-me@example.com');
    expect(
      codeOf(
        await graphql(
          gateway,
          `mutation { setUserStatus(id: "${admin.id}", status: DISABLED) { id } }`,
          { token: target.token },
        ),
      ),
    ).toBe('FORBIDDEN');

    const disabled = await graphql<{ setUserStatus: { status: string } }>(
      gateway,
      `mutation { setUserStatus(id: "${target.id}", status: DISABLED) { status } }`,
      { token: admin.token },
    );
    expect(disabled.data?.setUserStatus.status).toBe('DISABLED');
    expect(codeOf(await graphql(gateway, '{ me { id } }', { token: target.token }))).toBe(
      'UNAUTHENTICATED',
    );
    await expect(login('disable-me@example.com', 'correct horse battery')).rejects.toThrow(
      /UNAUTHENTICATED/,
    );

    await graphql(
      gateway,
      `mutation { setUserStatus(id: "${target.id}", status: ACTIVE) { status } }`,
      { token: admin.token },
    );
    await expect(login('disable-me@example.com', 'correct horse battery')).resolves.toMatchObject({
      id: target.id,
    });
  });

  it('deletes an account (self, or users:delete): it can no longer sign in or be read', async () => {
    const self = await register('leaving@example.com');
    const other = await register('removed@example.com');
    await eventually(async () => expect(await notificationCount(self.id)).toBe(1)); // the welcome
    expect(
      codeOf(
        await graphql(gateway, `mutation { deleteUser(id: "${other.id}") }`, { token: self.token }),
      ),
    ).toBe('FORBIDDEN');

    expect(
      (
        await graphql(
          gateway,
          `mutation { deleteUser(id: "${self.id}", currentPassword: "correct horse battery") }`,
          { token: self.token },
        )
      ).data,
    ).toEqual({ deleteUser: true });
    expect(codeOf(await graphql(gateway, '{ me { id } }', { token: self.token }))).toBe(
      'UNAUTHENTICATED',
    );
    await expect(login('leaving@example.com', 'correct horse battery')).rejects.toThrow(
      /UNAUTHENTICATED/,
    );
    // Other services remove the user's data too (user.deleted): the welcome notification is gone.
    await eventually(async () => expect(await notificationCount(self.id)).toBe(0));

    expect(
      (await graphql(gateway, `mutation { deleteUser(id: "${other.id}") }`, { token: admin.token }))
        .data,
    ).toEqual({ deleteUser: true });
    const gone = await graphql<{ user: null }>(gateway, `{ user(id: "${other.id}") { id } }`, {
      token: admin.token,
    });
    expect(gone.data?.user).toBeNull();
    expect(
      codeOf(
        await graphql(gateway, `mutation { deleteUser(id: "${other.id}") }`, {
          token: admin.token,
        }),
      ),
    ).toBe('NOT_FOUND');
  });
});
