import { Prisma, type Credential, type PrismaClient } from '@platform/db';
import type { AuthTx } from './auth.transactions';
import { lockUser } from './user-lock';

export interface CredentialRepository {
  find(userId: string): Promise<Credential | null>;
  /** Stores a user's first password hash; false if the user already has one. */
  create(userId: string, passwordHash: string): Promise<boolean>;
  /** Replaces the password hash; throws if the user has none. */
  update(tx: AuthTx, userId: string, passwordHash: string): Promise<void>;
  /** Replaces the password hash, or stores it if the user has none. */
  upsert(tx: AuthTx, userId: string, passwordHash: string): Promise<void>;
  /** Removes the password and every other way in: TOTP, recovery codes, passkeys, challenges. */
  delete(tx: AuthTx, userId: string): Promise<void>;
  /** The user's lock (see `lockUser` in user-lock.ts): of two changes at once, the second sees the first. */
  lockUser(tx: AuthTx, userId: string): Promise<void>;
  /** The user's password hash as `tx` sees it; null without a password. */
  currentHash(tx: AuthTx, userId: string): Promise<string | null>;
}

const isUniqueViolation = (error: unknown) =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';

export function createCredentialRepository(db: PrismaClient): CredentialRepository {
  return {
    find(userId) {
      return db.credential.findUnique({ where: { userId } });
    },
    async create(userId, passwordHash) {
      try {
        await db.credential.create({ data: { userId, passwordHash } });
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },
    async update(tx, userId, passwordHash) {
      await tx.credential.update({ where: { userId }, data: { passwordHash } });
    },
    async upsert(tx, userId, passwordHash) {
      await tx.credential.upsert({
        where: { userId },
        create: { userId, passwordHash },
        update: { passwordHash },
      });
    },
    async delete(tx, userId) {
      // Every way the user signed in goes with them: the password, the second factors and
      // their recovery codes, passkeys, and sign-ins waiting for a second factor.
      await tx.credential.deleteMany({ where: { userId } });
      await tx.totpFactor.deleteMany({ where: { userId } });
      await tx.recoveryCode.deleteMany({ where: { userId } });
      await tx.passkey.deleteMany({ where: { userId } });
      await tx.mfaChallenge.deleteMany({ where: { userId } });
      // Their provider identities too: the same person may sign up with them again.
      await tx.linkedAccount.deleteMany({ where: { userId } });
    },
    async currentHash(tx, userId) {
      const row = await tx.credential.findUnique({
        where: { userId },
        select: { passwordHash: true },
      });
      return row?.passwordHash ?? null;
    },
    lockUser,
  };
}
