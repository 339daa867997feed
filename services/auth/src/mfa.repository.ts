import type { PrismaClient } from '@platform/db';
import type { AuthTx } from './auth.transactions';
import { lockUser } from './user-lock';

export interface TotpFactorRow {
  userId: string;
  secretSealed: string;
  confirmedAt: Date | null;
  lastUsedStep: number;
}

export interface ChallengeRow {
  userId: string;
  userAgent: string | null;
  deviceToken: string | null;
  expiresAt: Date;
  failures: number;
}

export interface NewChallenge {
  tokenHash: string;
  userId: string;
  userAgent: string | undefined;
  deviceToken: string | undefined;
  expiresAt: Date;
}

export interface SessionAuthTimes {
  createdAt: Date;
  reauthenticatedAt: Date | null;
}

/** A user's second-factor state after a change, and its version (1, 2, ... per user). */
export interface MfaState {
  mfaEnrolled: boolean;
  stateVersion: number;
}

export interface MfaStatusRow {
  userId: string;
  totpEnabled: boolean;
  recoveryCodesLeft: number;
}

/** Second factors, recovery codes, sign-in challenges and the sessions' re-authentication stamps. */
export interface MfaRepository {
  findFactor(userId: string): Promise<TotpFactorRow | null>;
  /** Stores a pending factor, replacing a pending one; false when a confirmed one exists. */
  savePending(userId: string, secretSealed: string): Promise<boolean>;
  /**
   * Turns on the pending factor of this sealed secret (the one whose code was checked), its
   * first code's step used; false if no such factor is pending (none, or begun again since).
   */
  confirm(
    tx: AuthTx,
    userId: string,
    secretSealed: string,
    step: number,
    at: Date,
  ): Promise<boolean>;
  /**
   * Records in `tx` that a code of `step` was accepted, in one conditional statement: false
   * when a code of this step or a later one already was (a replay), or the factor is not on.
   */
  useStep(tx: AuthTx, userId: string, step: number): Promise<boolean>;
  /** Removes the factor (pending or on) and the recovery codes; false if it had none on. */
  removeFactor(tx: AuthTx, userId: string): Promise<boolean>;
  /** Replaces the codes of the user's confirmed factor; false (nothing written) without one. */
  replaceRecoveryCodes(tx: AuthTx, userId: string, codeHashes: readonly string[]): Promise<boolean>;
  /** Marks one unused recovery code of the user used, in `tx`; false if none matches. */
  useRecoveryCode(tx: AuthTx, userId: string, codeHash: string, at: Date): Promise<boolean>;
  statusOf(userIds: readonly string[]): Promise<MfaStatusRow[]>;
  /**
   * In a transaction that changed the user's second factors: the next version of their MFA
   * state (taking the user's version row lock until the commit, so versions follow commit
   * order) and whether they have a second factor (a confirmed TOTP factor or a passkey) as
   * the transaction, after that lock, sees it.
   */
  advanceState(tx: AuthTx, userId: string): Promise<MfaState>;
  /** The user's second factors as `tx` sees them: a confirmed TOTP (0 or 1) plus passkeys. */
  countFactors(tx: AuthTx, userId: string): Promise<number>;
  /** Each user's current MFA state version; 0 for a user whose factors never changed. */
  stateVersions(userIds: readonly string[]): Promise<Map<string, number>>;

  /** In `tx` when given (the challenge commits with what the transaction checked). */
  createChallenge(challenge: NewChallenge, tx?: AuthTx): Promise<void>;
  /** An open challenge (not used, not expired at `at`), or null. */
  findChallenge(tokenHash: string, at: Date): Promise<ChallengeRow | null>;
  /**
   * Locks the challenge's row until `tx` ends if it is open (not used, not expired at `at`):
   * of two transactions completing it, the second waits here and then finds it used. False if
   * it is not open (then nothing is locked).
   */
  lockChallenge(tx: AuthTx, tokenHash: string, at: Date): Promise<boolean>;
  /** Uses the challenge up, in one conditional statement: false if it was no longer open. */
  consumeChallenge(tx: AuthTx, tokenHash: string, at: Date): Promise<boolean>;
  /**
   * Takes one of the challenge's `maxAttempts` code checks, in one conditional statement (so
   * parallel guesses cannot share a slot), and reads the user's TOTP factor (null if none) in
   * the same statement: what answering it with a code needs. Null if the challenge is unknown,
   * expired, used, or out of attempts.
   */
  takeAttempt(
    tokenHash: string,
    maxAttempts: number,
    at: Date,
  ): Promise<{ challenge: ChallengeRow; factor: TotpFactorRow | null } | null>;
  /** Counts a wrong code; at `maxFailures` the challenge is used up. */
  countChallengeFailure(tokenHash: string, maxFailures: number, at: Date): Promise<void>;

  /** When the user last proved themselves in this session (null if it is not theirs or ended). */
  sessionAuthTimes(userId: string, sessionId: string): Promise<SessionAuthTimes | null>;
  /** Whether the session is theirs and live, under the user's lock (user-lock.ts) until `tx` ends. */
  sessionLiveLocked(tx: AuthTx, userId: string, sessionId: string): Promise<boolean>;
  /** Stamps the session as re-authenticated at `at`; false if it is not theirs or ended. */
  stampReauthentication(userId: string, sessionId: string, at: Date): Promise<boolean>;
}

export function createMfaRepository(db: PrismaClient): MfaRepository {
  return {
    async findFactor(userId) {
      return db.totpFactor.findUnique({
        where: { userId },
        select: { userId: true, secretSealed: true, confirmedAt: true, lastUsedStep: true },
      });
    },

    async savePending(userId, secretSealed) {
      const rows = await db.$executeRawUnsafe(
        `INSERT INTO "auth"."totp_factors" (user_id, secret_sealed) VALUES ($1::uuid, $2)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed,
           created_at = now(), last_used_step = 0
         WHERE "auth"."totp_factors".confirmed_at IS NULL`,
        userId,
        secretSealed,
      );
      return rows === 1;
    },

    async confirm(tx, userId, secretSealed, step, at) {
      const { count } = await tx.totpFactor.updateMany({
        where: { userId, secretSealed, confirmedAt: null },
        data: { confirmedAt: at, lastUsedStep: step },
      });
      return count === 1;
    },

    async useStep(tx, userId, step) {
      const { count } = await tx.totpFactor.updateMany({
        where: { userId, confirmedAt: { not: null }, lastUsedStep: { lt: step } },
        data: { lastUsedStep: step },
      });
      return count === 1;
    },

    async removeFactor(tx, userId) {
      const removed = await tx.totpFactor.deleteMany({ where: { userId } });
      await tx.recoveryCode.deleteMany({ where: { userId } });
      return removed.count > 0;
    },

    async replaceRecoveryCodes(tx, userId, codeHashes) {
      // The confirmed factor's row, locked: replacements of one user's codes run one after the
      // other (a second one's DELETE then sees the first one's codes, so 10 stay valid, not 20),
      // and none writes codes for a factor a concurrent disableTotp removed.
      const locked = await tx.$queryRaw<unknown[]>`
        SELECT 1 FROM "auth"."totp_factors"
        WHERE user_id = ${userId}::uuid AND confirmed_at IS NOT NULL FOR UPDATE`;
      if (locked.length === 0) return false;
      await tx.recoveryCode.deleteMany({ where: { userId } });
      await tx.recoveryCode.createMany({
        data: codeHashes.map((codeHash) => ({ codeHash, userId })),
      });
      return true;
    },

    async useRecoveryCode(tx, userId, codeHash, at) {
      const { count } = await tx.recoveryCode.updateMany({
        where: { codeHash, userId, usedAt: null },
        data: { usedAt: at },
      });
      return count === 1;
    },

    async statusOf(userIds) {
      if (userIds.length === 0) return [];
      const [factors, codes] = await Promise.all([
        db.totpFactor.findMany({
          where: { userId: { in: [...userIds] }, confirmedAt: { not: null } },
          select: { userId: true },
        }),
        db.recoveryCode.groupBy({
          by: ['userId'],
          where: { userId: { in: [...userIds] }, usedAt: null },
          _count: { _all: true },
        }),
      ]);
      const left = new Map(codes.map((row) => [row.userId, row._count._all]));
      return factors.map(({ userId }) => ({
        userId,
        totpEnabled: true,
        recoveryCodesLeft: left.get(userId) ?? 0,
      }));
    },

    async advanceState(tx, userId) {
      const [row] = await tx.$queryRaw<{ version: number }[]>`
        INSERT INTO "auth"."mfa_state_versions" (user_id, version) VALUES (${userId}::uuid, 1)
        ON CONFLICT (user_id) DO UPDATE SET version = "mfa_state_versions".version + 1
        RETURNING version`;
      // Read after the lock: a concurrent change of the same user has committed by now, and
      // each statement of a READ COMMITTED transaction sees what committed before it began.
      const totp = await tx.totpFactor.count({ where: { userId, confirmedAt: { not: null } } });
      const passkeys = totp > 0 ? 0 : await tx.passkey.count({ where: { userId } });
      return { mfaEnrolled: totp + passkeys > 0, stateVersion: Number(row?.version ?? 0) };
    },

    async countFactors(tx, userId) {
      const [totp, passkeys] = await Promise.all([
        tx.totpFactor.count({ where: { userId, confirmedAt: { not: null } } }),
        tx.passkey.count({ where: { userId } }),
      ]);
      return totp + passkeys;
    },

    async stateVersions(userIds) {
      const rows = await db.mfaStateVersion.findMany({ where: { userId: { in: [...userIds] } } });
      const versions = new Map(userIds.map((userId) => [userId, 0]));
      for (const row of rows) versions.set(row.userId, row.version);
      return versions;
    },

    async createChallenge(challenge, tx) {
      // Expired challenges are of no use to anyone: each new one sweeps a few away, in the
      // same statement (one round trip per sign-in, not two). Rows another transaction holds
      // are skipped, not waited for: sign-ins sweeping at once never queue behind each other.
      await (tx ?? db).$executeRawUnsafe(
        `WITH swept AS (
           DELETE FROM "auth"."mfa_challenges" WHERE token_hash IN (
             SELECT token_hash FROM "auth"."mfa_challenges"
             WHERE expires_at < now() - interval '1 hour' LIMIT 10 FOR UPDATE SKIP LOCKED))
         INSERT INTO "auth"."mfa_challenges" (token_hash, user_id, user_agent, device_token, expires_at)
         VALUES ($1, $2::uuid, $3, $4, $5::timestamptz)`,
        challenge.tokenHash,
        challenge.userId,
        challenge.userAgent ?? null,
        challenge.deviceToken ?? null,
        challenge.expiresAt,
      );
    },

    async findChallenge(tokenHash, at) {
      return db.mfaChallenge.findFirst({
        where: { tokenHash, usedAt: null, expiresAt: { gt: at } },
        select: {
          userId: true,
          userAgent: true,
          deviceToken: true,
          expiresAt: true,
          failures: true,
        },
      });
    },

    async takeAttempt(tokenHash, maxAttempts, at) {
      const rows = await db.$queryRawUnsafe<
        (ChallengeRow & {
          secretSealed: string | null;
          confirmedAt: Date | null;
          lastUsedStep: number | null;
        })[]
      >(
        `WITH c AS (
           UPDATE "auth"."mfa_challenges" SET failures = failures + 1
            WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2::timestamptz
              AND failures < $3
           RETURNING user_id, user_agent, device_token, expires_at, failures)
         SELECT c.user_id::text AS "userId", c.user_agent AS "userAgent",
           c.device_token AS "deviceToken", c.expires_at AS "expiresAt", c.failures,
           f.secret_sealed AS "secretSealed", f.confirmed_at AS "confirmedAt",
           f.last_used_step AS "lastUsedStep"
         FROM c LEFT JOIN "auth"."totp_factors" f ON f.user_id = c.user_id`,
        tokenHash,
        at,
        maxAttempts,
      );
      const row = rows[0];
      if (!row) return null;
      const { secretSealed, confirmedAt, lastUsedStep, ...challenge } = row;
      return {
        challenge,
        factor:
          secretSealed === null
            ? null
            : {
                userId: challenge.userId,
                secretSealed,
                confirmedAt,
                lastUsedStep: lastUsedStep ?? 0,
              },
      };
    },

    async lockChallenge(tx, tokenHash, at) {
      const rows = await tx.$queryRaw<unknown[]>`
        SELECT 1 FROM "auth"."mfa_challenges"
        WHERE token_hash = ${tokenHash} AND used_at IS NULL AND expires_at > ${at}::timestamptz
        FOR UPDATE`;
      return rows.length === 1;
    },

    async consumeChallenge(tx, tokenHash, at) {
      const { count } = await tx.mfaChallenge.updateMany({
        where: { tokenHash, usedAt: null, expiresAt: { gt: at } },
        data: { usedAt: at },
      });
      return count === 1;
    },

    async countChallengeFailure(tokenHash, maxFailures, at) {
      await db.$executeRawUnsafe(
        `UPDATE "auth"."mfa_challenges" SET failures = failures + 1,
           used_at = CASE WHEN failures + 1 >= $2 THEN $3::timestamptz ELSE used_at END
         WHERE token_hash = $1 AND used_at IS NULL`,
        tokenHash,
        maxFailures,
        at,
      );
    },

    async sessionLiveLocked(tx, userId, sessionId) {
      await lockUser(tx, userId);
      return (await tx.session.count({ where: { id: sessionId, userId, revokedAt: null } })) === 1;
    },

    async sessionAuthTimes(userId, sessionId) {
      return db.session.findFirst({
        where: { id: sessionId, userId, revokedAt: null },
        select: { createdAt: true, reauthenticatedAt: true },
      });
    },

    async stampReauthentication(userId, sessionId, at) {
      const { count } = await db.session.updateMany({
        where: { id: sessionId, userId, revokedAt: null },
        data: { reauthenticatedAt: at },
      });
      return count === 1;
    },
  };
}
