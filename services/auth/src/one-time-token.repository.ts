import type { OneTimeTokenPurpose, PrismaClient } from '@platform/db';
import { processOnce } from '@platform/outbox';
import { AUTH_SCHEMA, type AuthTx } from './auth.transactions';

export interface NewOneTimeToken {
  tokenHash: string;
  userId: string;
  purpose: OneTimeTokenPurpose;
  expiresAt: Date;
}

export interface OneTimeTokenRepository {
  /** Stores a token; in `tx` when given (e.g. with the event it answers). */
  create(token: NewOneTimeToken, tx?: AuthTx): Promise<void>;
  /**
   * Records in `tx` that `consumer` handled event `eventId`; false if it already had (a
   * duplicate delivery, whose effect the caller then skips).
   */
  processOnce(tx: AuthTx, consumer: string, eventId: string): Promise<boolean>;
  /**
   * Marks the token used at `at`, in one conditional statement (of concurrent calls, one
   * succeeds), in `tx` when given; its user, or null if unknown, used, expired at `at` or for
   * another purpose.
   */
  markUsed(
    tokenHash: string,
    purpose: OneTimeTokenPurpose,
    at: Date,
    tx?: AuthTx,
  ): Promise<string | null>;
  /** The token's user if it could be used at `at` (as markUsed would find it), changing nothing. */
  findUsable(tokenHash: string, purpose: OneTimeTokenPurpose, at: Date): Promise<string | null>;
  /** Marks every unused token of the user for `purpose` used at `at`, in `tx`. */
  /** Uses up the user's unused tokens for `purpose` (only those issued before `createdBefore`, if given). */
  markAllUsed(
    tx: AuthTx,
    userId: string,
    purpose: OneTimeTokenPurpose,
    at: Date,
    createdBefore?: Date,
  ): Promise<void>;
}

export function createOneTimeTokenRepository(db: PrismaClient): OneTimeTokenRepository {
  return {
    async create(token, tx) {
      await (tx ?? db).oneTimeToken.create({ data: token });
    },
    processOnce: (tx, consumer, eventId) => processOnce(tx, AUTH_SCHEMA, consumer, eventId),
    async markUsed(tokenHash, purpose, at, tx) {
      const [row] = await (tx ?? db).$queryRawUnsafe<{ user_id: string }[]>(
        `UPDATE "auth"."one_time_tokens" SET used_at = $3::timestamptz
         WHERE token_hash = $1 AND purpose = $2::"auth"."OneTimeTokenPurpose" AND used_at IS NULL AND expires_at > $3::timestamptz
         RETURNING user_id::text`,
        tokenHash,
        purpose,
        at,
      );
      return row?.user_id ?? null;
    },
    async findUsable(tokenHash, purpose, at) {
      const row = await db.oneTimeToken.findFirst({
        where: { tokenHash, purpose, usedAt: null, expiresAt: { gt: at } },
        select: { userId: true },
      });
      return row?.userId ?? null;
    },
    async markAllUsed(tx, userId, purpose, at, createdBefore) {
      await tx.oneTimeToken.updateMany({
        where: {
          userId,
          purpose,
          usedAt: null,
          ...(createdBefore ? { createdAt: { lt: createdBefore } } : {}),
        },
        data: { usedAt: at },
      });
    },
  };
}
