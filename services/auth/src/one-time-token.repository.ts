import type { OneTimeTokenPurpose, PrismaClient } from '@platform/db';

export interface NewOneTimeToken {
  tokenHash: string;
  userId: string;
  purpose: OneTimeTokenPurpose;
  expiresAt: Date;
}

export interface OneTimeTokenRepository {
  create(token: NewOneTimeToken): Promise<void>;
  /**
   * Marks the token used at `at`, in one conditional statement (of concurrent calls, one
   * succeeds); its user, or null if unknown, used, expired at `at` or for another purpose.
   */
  markUsed(tokenHash: string, purpose: OneTimeTokenPurpose, at: Date): Promise<string | null>;
}

export function createOneTimeTokenRepository(db: PrismaClient): OneTimeTokenRepository {
  return {
    async create(token) {
      await db.oneTimeToken.create({ data: token });
    },
    async markUsed(tokenHash, purpose, at) {
      const [row] = await db.$queryRawUnsafe<{ user_id: string }[]>(
        `UPDATE "auth"."one_time_tokens" SET used_at = $3::timestamptz
         WHERE token_hash = $1 AND purpose = $2::"auth"."OneTimeTokenPurpose" AND used_at IS NULL AND expires_at > $3::timestamptz
         RETURNING user_id::text`,
        tokenHash,
        purpose,
        at,
      );
      return row?.user_id ?? null;
    },
  };
}
