import { randomUUID } from 'node:crypto';
import type { Prisma } from '@platform/db';

/** A mark outlives a removal that never ended (a crash between its two calls) at most this long. */
export const LEAVING_TTL_MS = 120_000;

/**
 * The users being disabled or deleted right now (`rbac.leaving_users`): the last-admin rule
 * no longer counts them as active, although the user service has not yet recorded the change.
 * Marked under the graph lock in the transaction of the decision, cleared once the change was
 * made or failed; a mark left behind stops counting when it expires (by the database's clock).
 */
export interface LeavingRepository {
  /**
   * Marks the user until `LEAVING_TTL_MS` from now; the token clears this mark only (the same
   * user may leave twice at once). Drops expired marks.
   */
  mark(userId: string): Promise<string>;
  clear(token: string): Promise<void>;
  /** Which of these users have a mark that has not expired. */
  among(userIds: readonly string[]): Promise<Set<string>>;
}

/** Queries through `db`: the client, or the transaction client of a change. */
export function createLeavingRepository(db: Prisma.TransactionClient): LeavingRepository {
  return {
    async mark(userId) {
      const token = randomUUID();
      await db.$executeRaw`DELETE FROM "rbac"."leaving_users" WHERE expires_at <= now()`;
      await db.$executeRaw`
        INSERT INTO "rbac"."leaving_users" (token, user_id, expires_at)
        VALUES (${token}::uuid, ${userId}::uuid,
                now() + ${LEAVING_TTL_MS}::int * interval '1 millisecond')`;
      return token;
    },

    async clear(token) {
      await db.leavingUser.deleteMany({ where: { token } });
    },

    async among(userIds) {
      if (userIds.length === 0) return new Set();
      const rows = await db.$queryRaw<{ user_id: string }[]>`
        SELECT DISTINCT user_id::text FROM "rbac"."leaving_users"
         WHERE user_id = ANY(${[...userIds]}::uuid[]) AND expires_at > now()`;
      return new Set(rows.map((row) => row.user_id));
    },
  };
}
