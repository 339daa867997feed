import { AppError } from '@platform/errors';
import { PERMISSIONS } from '@platform/permissions';
import { userV1 } from '@platform/proto';
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
  /** The platform must keep someone who can administer it. */
  async function requireNotLastAdmin(userId: string): Promise<void> {
    const { lastAdmin } = await permissions.isLastAdmin({ userId });
    if (lastAdmin) throw AppError.badInput('id', 'is the last active global admin');
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
        await context.authz.require(PERMISSIONS['users:write']);
        requireId('id', args.id, 'user');
        if (args.status === 'DISABLED') await requireNotLastAdmin(args.id);
        const { user } = await users.updateUser({
          id: args.id,
          status: STATUS_TO_PROTO[args.status],
        });
        if (args.status === 'DISABLED') {
          await auth.revokeAllSessions({
            userId: args.id,
            exceptSessionId: '',
            reason: 'user_disabled',
          });
        }
        return user;
      },
      async deleteUser(
        _: unknown,
        { id, currentPassword }: { id: string; currentPassword?: string | null },
        context: UsersContext,
      ) {
        await context.authz.requireSelfOr(id, PERMISSIONS['users:delete']);
        await users.getUser({ id }); // NOT_FOUND before anything is removed
        await requireNotLastAdmin(id);
        // Deleting oneself needs the password (a stolen access token is not enough).
        const self = context.viewer?.userId === id;
        if (self && !currentPassword) {
          throw AppError.badInput('currentPassword', 'is required to delete your own account');
        }
        // Credentials and sessions first: from here on the account cannot be used. The auth
        // service checks the password, under the same guess limits as login.
        await auth.deleteCredential({
          userId: id,
          currentPassword: self ? (currentPassword ?? '') : '',
          clientAddress: context.clientAddress ?? '',
        });
        await users.deleteUser({ id });
        return true;
      },
    },
  };
}
