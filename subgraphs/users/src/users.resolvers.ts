import DataLoader from 'dataloader';
import { PERMISSIONS } from '@platform/permissions';
import { userV1 } from '@platform/proto';
import type { GrpcClient } from '@platform/grpc';
import {
  DateTimeScalar,
  viewerIfAny,
  type Authorizer,
  type SubgraphContext,
} from '@platform/subgraph';

type UserClient = GrpcClient<typeof userV1.UserServiceService>;

export interface UsersContext extends SubgraphContext {
  users: DataLoader<string, userV1.User | null>;
  authz: Authorizer;
}

/** One BatchGetUsers call per tick for every User a request touches. */
export function createUserLoader(client: UserClient): DataLoader<string, userV1.User | null> {
  return new DataLoader(async (ids) => {
    const { users } = await client.batchGetUsers({ ids: [...ids] });
    const byId = new Map(users.map((user) => [user.id, user]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

const STATUS: Record<number, 'ACTIVE' | 'DISABLED'> = {
  [userV1.UserStatus.USER_STATUS_ACTIVE]: 'ACTIVE',
  [userV1.UserStatus.USER_STATUS_DISABLED]: 'DISABLED',
};

export const usersResolvers = {
  DateTime: DateTimeScalar,
  Query: {
    // Null for a caller without a token; one whose token was refused here is told why.
    me: (_: unknown, __: unknown, context: UsersContext) => {
      const viewer = viewerIfAny(context);
      return viewer ? context.users.load(viewer.userId) : null;
    },
  },
  User: {
    /**
     * A user reached through another subgraph (a notification's recipient, an audit entry's
     * actor): the profile is shown as by `Query.user`, to the user themself or a holder of
     * users:read. Its id alone, the key, is answered without this (it is the other subgraph's).
     */
    async __resolveReference(reference: { id: string }, context: UsersContext) {
      await context.authz.requireSelfOr(reference.id, PERMISSIONS['users:read']);
      return context.users.load(reference.id);
    },
    status: (user: userV1.User) => STATUS[user.status] ?? 'ACTIVE',
  },
};
