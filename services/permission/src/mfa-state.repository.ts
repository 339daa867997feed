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
  /**
   * Stores the state unless one of the same or a newer version is stored already (a late or
   * repeated event, or an answer older than an event): true when it was stored.
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

    async saveIfNewer(userId, { enrolled, version }) {
      // One statement: two writers at once cannot both pass a separate read.
      const stored = await db.$executeRaw`
        INSERT INTO "rbac"."user_mfa_states" (user_id, enrolled, version, updated_at)
        VALUES (${userId}::uuid, ${enrolled}, ${version}, now())
        ON CONFLICT (user_id) DO UPDATE
          SET enrolled = EXCLUDED.enrolled, version = EXCLUDED.version, updated_at = now()
          WHERE "user_mfa_states".version < EXCLUDED.version`;
      return stored > 0;
    },
  };
}
