import type { Prisma } from '@platform/db';

/** A user's second-factor state as the auth service last reported it, and its version. */
export interface MfaStateRow {
  enrolled: boolean;
  /** The auth service's per-user MFA state version (0: the factors never changed). */
  version: number;
}

/** The projection of users' second factors (rbac.user_mfa_states). */
export interface MfaStateRepository {
  find(userId: string): Promise<MfaStateRow | null>;
  /** The rows of these users that exist, by user id. */
  findMany(userIds: readonly string[]): Promise<Map<string, MfaStateRow>>;
  /**
   * Stores the state (an answer of the auth service) unless one of the same or a newer version
   * is stored already (an answer read before another that was stored first): true when it was
   * stored. A stored version 0 (a backfill, or a state the auth service did not version) is
   * always replaced, so a stale one can be corrected.
   */
  saveIfNewer(userId: string, state: MfaStateRow): Promise<boolean>;
}

/** Queries through `db`: the client, or the transaction client of a change. */
export function createMfaStateRepository(db: Prisma.TransactionClient): MfaStateRepository {
  return {
    async find(userId) {
      return db.userMfaState.findUnique({
        where: { userId },
        select: { enrolled: true, version: true },
      });
    },

    async findMany(userIds) {
      const rows = await db.userMfaState.findMany({
        where: { userId: { in: [...userIds] } },
        select: { userId: true, enrolled: true, version: true },
      });
      return new Map(rows.map(({ userId, enrolled, version }) => [userId, { enrolled, version }]));
    },

    async saveIfNewer(userId, { enrolled, version }) {
      // One statement: two writers at once cannot both pass a separate read.
      const stored = await db.$executeRaw`
        INSERT INTO "rbac"."user_mfa_states" (user_id, enrolled, version, updated_at)
        VALUES (${userId}::uuid, ${enrolled}, ${version}, now())
        ON CONFLICT (user_id) DO UPDATE
          SET enrolled = EXCLUDED.enrolled, version = EXCLUDED.version, updated_at = now()
          WHERE "user_mfa_states".version < EXCLUDED.version OR "user_mfa_states".version = 0`;
      return stored > 0;
    },
  };
}
