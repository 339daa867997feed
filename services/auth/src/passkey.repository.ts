import type { PrismaClient } from '@platform/db';
import type { Redis } from '@platform/redis';
import type { AuthTx } from './auth.transactions';
import { lockUser } from './user-lock';

export interface PasskeyRow {
  id: string;
  userId: string;
  /** base64url, as the authenticator chose it. */
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  name: string;
  backedUp: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface NewPasskey {
  userId: string;
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  name: string;
  aaguid: string;
  backedUp: boolean;
}

/** Registered passkeys (PostgreSQL, `auth.passkeys`). */
export interface PasskeyRepository {
  listByUser(userId: string): Promise<PasskeyRow[]>;
  findByCredentialId(credentialId: string): Promise<PasskeyRow | null>;
  /**
   * How many passkeys the user has, holding a per-user lock until `tx` ends: registrations
   * finishing at once count one after the other, so none passes a limit the other filled.
   */
  countLocked(tx: AuthTx, userId: string): Promise<number>;
  /** Stores a credential; false when that credential id is registered already (to anyone). */
  create(tx: AuthTx, passkey: NewPasskey): Promise<PasskeyRow | null>;
  /**
   * Records an accepted assertion, in one conditional statement: the counter must move forward
   * (or stay 0 for an authenticator that keeps none). False when another assertion got there
   * first with the same or a later counter (a clone, or a replay racing it).
   */
  recordUse(id: string, previous: number, counter: number, at: Date): Promise<boolean>;
  /**
   * Removes one of the user's passkeys, under the user's lock (user-lock.ts, held until `tx`
   * ends); false if it is not theirs.
   */
  remove(tx: AuthTx, userId: string, id: string): Promise<boolean>;
  /**
   * Whether this passkey of the user's is still registered, under the user's lock: the admission
   * of a sign-in with it, which a removal or a deletion either waits for or has already refused.
   */
  stillRegistered(tx: AuthTx, userId: string, id: string): Promise<boolean>;
  /** How many passkeys each of these users has (absent: none). */
  countByUser(userIds: readonly string[]): Promise<Map<string, number>>;
}

const SELECT = {
  id: true,
  userId: true,
  credentialId: true,
  publicKey: true,
  counter: true,
  transports: true,
  name: true,
  backedUp: true,
  createdAt: true,
  lastUsedAt: true,
} as const;

type Selected = Omit<PasskeyRow, 'counter'> & { counter: bigint };
const toRow = (row: Selected): PasskeyRow => ({ ...row, counter: Number(row.counter) });

export function createPasskeyRepository(db: PrismaClient): PasskeyRepository {
  return {
    async listByUser(userId) {
      const rows = await db.passkey.findMany({
        where: { userId },
        orderBy: { createdAt: 'desc' },
        select: SELECT,
      });
      return rows.map(toRow);
    },

    async findByCredentialId(credentialId) {
      const row = await db.passkey.findUnique({ where: { credentialId }, select: SELECT });
      return row ? toRow(row) : null;
    },

    async countLocked(tx, userId) {
      await tx.$executeRawUnsafe(
        `SELECT pg_advisory_xact_lock(hashtextextended('auth.passkeys:' || $1, 0))`,
        userId,
      );
      return tx.passkey.count({ where: { userId } });
    },

    async create(tx, passkey) {
      const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
        `INSERT INTO "auth"."passkeys"
           (id, user_id, credential_id, public_key, counter, transports, name, aaguid, backed_up)
         VALUES (gen_random_uuid(), $1::uuid, $2, $3, $4, $5::text[], $6, $7, $8)
         ON CONFLICT (credential_id) DO NOTHING RETURNING id`,
        passkey.userId,
        passkey.credentialId,
        Buffer.from(passkey.publicKey),
        BigInt(passkey.counter),
        passkey.transports,
        passkey.name,
        passkey.aaguid,
        passkey.backedUp,
      );
      const id = rows[0]?.id;
      if (!id) return null;
      const row = await tx.passkey.findUniqueOrThrow({ where: { id }, select: SELECT });
      return toRow(row);
    },

    async recordUse(id, previous, counter, at) {
      const { count } = await db.passkey.updateMany({
        where:
          counter === 0 && previous === 0
            ? { id, counter: 0 }
            : { id, counter: { lt: BigInt(counter) } },
        data: { counter: BigInt(counter), lastUsedAt: at },
      });
      return count === 1;
    },

    async remove(tx, userId, id) {
      await lockUser(tx, userId);
      const { count } = await tx.passkey.deleteMany({ where: { id, userId } });
      return count === 1;
    },

    async stillRegistered(tx, userId, id) {
      await lockUser(tx, userId);
      return (await tx.passkey.count({ where: { id, userId } })) === 1;
    },

    async countByUser(userIds) {
      if (userIds.length === 0) return new Map();
      const counts = await db.passkey.groupBy({
        by: ['userId'],
        where: { userId: { in: [...userIds] } },
        _count: { _all: true },
      });
      return new Map(counts.map((row) => [row.userId, row._count._all]));
    },
  };
}

/** What a ceremony's challenge was issued for. */
export type CeremonyState =
  | { kind: 'registration'; userId: string; sessionId: string }
  | { kind: 'login' }
  /** Answering the MFA challenge of this hash (a password was right). */
  | { kind: 'mfa'; challengeHash: string }
  /** Proving it is still them in this session (re-authentication). */
  | { kind: 'reauthentication'; userId: string; sessionId: string };

/** Ceremony challenges: single-use, short-lived, in Redis (shared by every instance). */
export interface PasskeyChallengeRepository {
  save(challenge: string, state: CeremonyState, ttlSeconds: number): Promise<void>;
  /** Takes the challenge's state and deletes it in one step (GETDEL): null if unknown or used. */
  take(challenge: string): Promise<CeremonyState | null>;
}

/** Challenges are random (simplewebauthn draws 32 bytes), base64url: at most this long. */
const MAX_CHALLENGE_LENGTH = 128;

export function createPasskeyChallengeRepository(redis: Redis): PasskeyChallengeRepository {
  // The client adds REDIS_KEY_PREFIX.
  const keyOf = (challenge: string) => `auth:passkey-challenge:${challenge}`;
  return {
    async save(challenge, state, ttlSeconds) {
      await redis.set(keyOf(challenge), JSON.stringify(state), 'EX', ttlSeconds);
    },
    async take(challenge) {
      if (!challenge || challenge.length > MAX_CHALLENGE_LENGTH) return null;
      const value = await redis.getdel(keyOf(challenge));
      return value ? (JSON.parse(value) as CeremonyState) : null;
    },
  };
}
