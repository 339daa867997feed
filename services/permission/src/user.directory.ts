import type { GrpcClient } from '@platform/grpc';
import { userV1 } from '@platform/proto';

/** What the permission service needs to know of users (the user service owns them). */
export interface UserDirectory {
  /** NOT_FOUND when there is no such user. */
  requireExists(userId: string): Promise<void>;
  /** Whether any of these users exists and is active. */
  anyActive(userIds: readonly string[]): Promise<boolean>;
}

export function createUserDirectory(
  users: GrpcClient<typeof userV1.UserServiceService>,
): UserDirectory {
  return {
    async requireExists(userId) {
      await users.getUser({ id: userId }); // NOT_FOUND when there is no such user
    },
    async anyActive(userIds) {
      if (userIds.length === 0) return false;
      const { users: found } = await users.batchGetUsers({ ids: [...userIds] });
      return found.some((user) => user.status === userV1.UserStatus.USER_STATUS_ACTIVE);
    },
  };
}
