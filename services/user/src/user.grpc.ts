import type { User, UserStatus } from '@platform/db';
import type { UnaryHandlers } from '@platform/grpc';
import { userV1 } from '@platform/proto';
import { decodeCursor, encodeCursor } from '@platform/validation';
import type { UserService } from './user.service';

const DEFAULT_PAGE = 20;

const STATUS_TO_PROTO: Record<UserStatus, userV1.UserStatus> = {
  ACTIVE: userV1.UserStatus.USER_STATUS_ACTIVE,
  DISABLED: userV1.UserStatus.USER_STATUS_DISABLED,
};

/** The status a request asks for; undefined (unchanged) for UNSPECIFIED or absent. */
function statusFromProto(status: userV1.UserStatus | undefined): UserStatus | undefined {
  if (status === userV1.UserStatus.USER_STATUS_ACTIVE) return 'ACTIVE';
  if (status === userV1.UserStatus.USER_STATUS_DISABLED) return 'DISABLED';
  return undefined;
}

export function toProtoUser(user: User): userV1.User {
  return {
    id: user.id,
    email: user.email,
    displayName: user.displayName,
    status: STATUS_TO_PROTO[user.status],
    emailVerified: user.emailVerified,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

/** gRPC <-> use cases: proto in, domain out and back; the rules live in user.service.ts. */
export function createUserHandlers(deps: {
  users: UserService;
}): UnaryHandlers<typeof userV1.UserServiceService> {
  const { users } = deps;

  return {
    async createUser(request) {
      const user = await users.register({
        email: request.email,
        displayName: request.displayName,
      });
      return { user: toProtoUser(user) };
    },
    async getUser(request) {
      return { user: toProtoUser(await users.get(request.id)) };
    },
    async getUserByEmail(request) {
      return { user: toProtoUser(await users.findByEmail(request.email)) };
    },
    async deleteUser(request) {
      await users.delete(request.id);
      return {};
    },
    async listUsers(request) {
      const page = await users.list({
        first: request.first || DEFAULT_PAGE,
        after: request.after ? decodeCursor(request.after) : undefined,
        search: request.search,
      });
      return {
        users: page.rows.map(toProtoUser),
        cursors: page.rows.map(encodeCursor),
        hasNextPage: page.hasNextPage,
        totalCount: page.totalCount,
      };
    },
    async updateUser(request) {
      const user = await users.update(request.id, {
        displayName: request.displayName,
        status: statusFromProto(request.status),
        emailVerified: request.emailVerified,
      });
      return { user: toProtoUser(user) };
    },
    async batchGetUsers(request) {
      return { users: (await users.getMany(request.ids)).map(toProtoUser) };
    },
  };
}
