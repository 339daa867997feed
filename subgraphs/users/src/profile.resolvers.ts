import { AppError } from '@platform/errors';
import { PERMISSIONS } from '@platform/permissions';
import { permissionV1, userV1 } from '@platform/proto';
import { requireViewer } from '@platform/subgraph';
import { requireId } from '@platform/validation';
import type { IdentityClients } from './auth.resolvers';
import type { UsersContext } from './users.resolvers';

const STATUS_TO_PROTO = {
  ACTIVE: userV1.UserStatus.USER_STATUS_ACTIVE,
  DISABLED: userV1.UserStatus.USER_STATUS_DISABLED,
} as const;

/** Reading and managing profiles; every field checks who may do it. */
export function createProfileResolvers({
  users,
  auth,
  permissions,
}: Pick<IdentityClients, 'users' | 'auth' | 'permissions'>) {
  /**
   * Disabling, enabling or deleting a user: the permission service rules first (the actor must
   * hold everything the target holds; the last active global admin stays, decided under the
   * lock every removal of an admin takes), then `act`, then the permission service hears
   * whether it was done (it audits the change and stops counting the target as leaving).
   */
  async function changeUser<T>(
    actorId: string,
    userId: string,
    change: permissionV1.UserChange,
    act: () => Promise<T>,
  ): Promise<T> {
    const { token } = await permissions.beginUserChange({ actorId, userId, change });
    let result: T;
    try {
      result = await act();
    } catch (error) {
      // Undo the mark; should this fail too, the mark expires on its own.
      await permissions
        .endUserChange({ actorId, userId, change, token, done: false })
        .catch(() => undefined);
      throw error;
    }
    await permissions.endUserChange({ actorId, userId, change, token, done: true });
    return result;
  }

  return {
    Query: {
      async user(_: unknown, { id }: { id: string }, context: UsersContext) {
        await context.authz.requireSelfOr(id, PERMISSIONS['users:read']);
        return context.users.load(id);
      },
      async users(
        _: unknown,
        args: { first: number; after?: string | null; search?: string | null },
        context: UsersContext,
      ) {
        await context.authz.require(PERMISSIONS['users:read']);
        if (args.first < 1 || args.first > 100)
          throw AppError.badInput('first', 'must be between 1 and 100');
        const page = await users.listUsers({
          first: args.first,
          after: args.after ?? '',
          search: args.search ?? '',
        });
        return {
          edges: page.users.map((node, index) => ({ node, cursor: page.cursors[index] ?? '' })),
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.cursors.at(-1) ?? null },
          totalCount: page.totalCount,
        };
      },
    },
    Mutation: {
      async updateProfile(
        _: unknown,
        { input }: { input: { displayName?: string | null } },
        context: UsersContext,
      ) {
        const viewer = requireViewer(context);
        if (input.displayName === null) throw AppError.badInput('displayName', 'cannot be null');
        const { user } = await users.updateUser({
          id: viewer.userId,
          displayName: input.displayName,
          status: userV1.UserStatus.USER_STATUS_UNSPECIFIED,
        });
        return user;
      },
      async changePassword(
        _: unknown,
        args: { currentPassword: string; newPassword: string },
        context: UsersContext,
      ) {
        const viewer = requireViewer(context);
        await auth.changePassword({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          currentPassword: args.currentPassword,
          newPassword: args.newPassword,
          clientAddress: context.clientAddress ?? '',
        });
        return true;
      },
      async setUserStatus(
        _: unknown,
        args: { id: string; status: keyof typeof STATUS_TO_PROTO },
        context: UsersContext,
      ) {
        const viewer = await context.authz.require(PERMISSIONS['users:write']);
        requireId('id', args.id, 'user');
        const change =
          args.status === 'DISABLED'
            ? permissionV1.UserChange.USER_CHANGE_DISABLE
            : permissionV1.UserChange.USER_CHANGE_ENABLE;
        const { user } = await changeUser(viewer.userId, args.id, change, () =>
          users.updateUser({ id: args.id, status: STATUS_TO_PROTO[args.status] }),
        );
        // Disabled: every session ends, and no reset token mailed before sets a password.
        if (args.status === 'DISABLED') await auth.lockOutUser({ userId: args.id });
        return user;
      },
      async deleteUser(
        _: unknown,
        { id, currentPassword }: { id: string; currentPassword?: string | null },
        context: UsersContext,
      ) {
        await context.authz.requireSelfOr(id, PERMISSIONS['users:delete']);
        const actorId = requireViewer(context).userId;
        await users.getUser({ id }); // NOT_FOUND before anything is removed
        const self = context.viewer?.userId === id;
        // The permission service rules first (the last admin hears that before anything else).
        await changeUser(actorId, id, permissionV1.UserChange.USER_CHANGE_DELETE, async () => {
          // Deleting oneself needs the password (a stolen access token is not enough).
          if (self && !currentPassword) {
            throw AppError.badInput('currentPassword', 'is required to delete your own account');
          }
          // Credentials and sessions first: from here on the account cannot be used. The auth
          // service checks the password, under the same guess limits as login.
          await auth.deleteCredential({
            userId: id,
            currentPassword: self ? (currentPassword ?? '') : '',
            sessionId: self ? (context.viewer?.sessionId ?? '') : '',
            clientAddress: context.clientAddress ?? '',
          });
          await users.deleteUser({ id });
        });
        return true;
      },
    },
  };
}
