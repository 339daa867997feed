import { BoundedMap } from '@platform/collections';
import type { GrpcClient } from '@platform/grpc';
import type { userV1 } from '@platform/proto';

type UserClient = GrpcClient<typeof userV1.UserServiceService>;

/**
 * Which recipients exist, asked of the user service once per user and then remembered here
 * for `ttlMs` (at most `maxEntries` users, oldest first out), so sending costs no call to the
 * user service in the common case. Only existence is remembered, never absence: a user who
 * registers a moment later is found at once. A deletion is not waited for here: the
 * `user.deleted` consumer records the recipient as deleted in the same transaction as it
 * removes their notifications, and creating refuses deleted recipients, so a send that races
 * a deletion is either removed with the rest or refused.
 */
export interface RecipientDirectory {
  /** Resolves if the user exists; NOT_FOUND (from the user service) otherwise. */
  requireExists(userId: string): Promise<void>;
}

export function createRecipientDirectory(
  users: Pick<UserClient, 'getUser'>,
  options: { ttlMs?: number; maxEntries?: number; now?: () => number } = {},
): RecipientDirectory {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const maxEntries = options.maxEntries ?? 50_000;
  const now = options.now ?? Date.now;
  const knownUntil = new BoundedMap<string, number>(maxEntries);

  return {
    async requireExists(userId) {
      const until = knownUntil.get(userId);
      if (until !== undefined && until > now()) return;
      await users.getUser({ id: userId });
      knownUntil.set(userId, now() + ttlMs);
    },
  };
}
