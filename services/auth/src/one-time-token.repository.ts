import { randomBytes } from 'node:crypto';
import type { OneTimeTokenPurpose, PrismaClient } from '@platform/db';
import { hashToken } from './session.repository';

/** How long each kind of mailed token stays valid. */
export const ONE_TIME_TOKEN_TTL_SECONDS: Record<OneTimeTokenPurpose, number> = {
  VERIFY_EMAIL: 24 * 3600,
  RESET_PASSWORD: 30 * 60,
};

export interface OneTimeTokenRepository {
  /** A new single-use token (256 bits; only its hash is stored). */
  issue(userId: string, purpose: OneTimeTokenPurpose): Promise<string>;
  /** Marks the token used and returns its user; null if unknown, used, expired or for another purpose. */
  consume(token: string, purpose: OneTimeTokenPurpose): Promise<string | null>;
}

export function createOneTimeTokenRepository(db: PrismaClient): OneTimeTokenRepository {
  return {
    async issue(userId, purpose) {
      const token = randomBytes(32).toString('base64url');
      await db.oneTimeToken.create({
        data: {
          tokenHash: hashToken(token),
          userId,
          purpose,
          expiresAt: new Date(Date.now() + ONE_TIME_TOKEN_TTL_SECONDS[purpose] * 1000),
        },
      });
      return token;
    },
    async consume(token, purpose) {
      // One conditional update: two concurrent uses cannot both succeed.
      const [row] = await db.$queryRawUnsafe<{ user_id: string }[]>(
        `UPDATE "auth"."one_time_tokens" SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2::"auth"."OneTimeTokenPurpose" AND used_at IS NULL AND expires_at > now()
         RETURNING user_id::text`,
        hashToken(token),
        purpose,
      );
      return row?.user_id ?? null;
    },
  };
}
