import { Prisma, type PrismaClient } from '@platform/db';
import type { Redis } from '@platform/redis';
import type { AuthTx } from './auth.transactions';
import { lockUser } from './user-lock';

export interface LinkedAccountRow {
  id: string;
  userId: string;
  provider: string;
  subject: string;
  email: string;
  createdAt: Date;
}

/** Identities at OpenID Connect providers linked to users (PostgreSQL, `auth.linked_accounts`). */
export interface LinkedAccountRepository {
  findBySubject(provider: string, subject: string): Promise<LinkedAccountRow | null>;
  listByUser(userId: string): Promise<LinkedAccountRow[]>;
  /** Links the identity; null when (provider, subject) is linked already (to anyone). */
  create(
    tx: AuthTx,
    link: { userId: string; provider: string; subject: string; email: string },
  ): Promise<LinkedAccountRow | null>;
  /**
   * The user's linked accounts, each row locked until the transaction ends: two unlinks at once
   * see each other's outcome, so they cannot remove the last two together.
   */
  lockByUser(tx: AuthTx, userId: string): Promise<{ id: string }[]>;
  remove(tx: AuthTx, userId: string, id: string): Promise<boolean>;
  /**
   * Whether this link of the user's is still there, under the user's lock (held until `tx` ends):
   * the admission of a sign-in through it, which an unlink or a deletion either waits for or
   * has already refused.
   */
  stillLinked(tx: AuthTx, userId: string, id: string): Promise<boolean>;
  /** Whether the user can sign in another way: a password or a passkey. */
  hasOtherMethod(tx: AuthTx, userId: string): Promise<boolean>;
  /** Whether the user can sign in at all: a password, a passkey or a linked account. */
  canSignIn(tx: AuthTx, userId: string): Promise<boolean>;
}

const isUniqueViolation = (error: unknown) =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';

export function createLinkedAccountRepository(db: PrismaClient): LinkedAccountRepository {
  async function hasOtherMethod(tx: AuthTx, userId: string) {
    const [credential, passkeys] = await Promise.all([
      tx.credential.findUnique({ where: { userId }, select: { userId: true } }),
      tx.passkey.count({ where: { userId } }),
    ]);
    return credential !== null || passkeys > 0;
  }
  return {
    findBySubject(provider, subject) {
      return db.linkedAccount.findUnique({ where: { provider_subject: { provider, subject } } });
    },
    listByUser(userId) {
      return db.linkedAccount.findMany({
        where: { userId },
        orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
      });
    },
    async create(tx, link) {
      try {
        // A savepoint-free probe: a unique violation aborts the transaction, so look first and
        // let the constraint catch only a race.
        const taken = await tx.linkedAccount.findUnique({
          where: { provider_subject: { provider: link.provider, subject: link.subject } },
        });
        if (taken) return null;
        return await tx.linkedAccount.create({ data: link });
      } catch (error) {
        if (isUniqueViolation(error)) return null;
        throw error;
      }
    },
    async lockByUser(tx, userId) {
      await lockUser(tx, userId);
      return tx.$queryRaw<{ id: string }[]>`
        SELECT id::text AS id FROM auth.linked_accounts WHERE user_id = ${userId}::uuid FOR UPDATE`;
    },
    async remove(tx, userId, id) {
      const { count } = await tx.linkedAccount.deleteMany({ where: { id, userId } });
      return count === 1;
    },
    async stillLinked(tx, userId, id) {
      await lockUser(tx, userId);
      return (await tx.linkedAccount.count({ where: { id, userId } })) === 1;
    },
    hasOtherMethod,
    async canSignIn(tx, userId) {
      await lockUser(tx, userId);
      if (await hasOtherMethod(tx, userId)) return true;
      return (await tx.linkedAccount.count({ where: { userId } })) > 0;
    },
  };
}

/** A begun sign-in: what its callback must be redeemed with (kept server-side only). */
export interface OidcFlow {
  provider: string;
  redirectUri: string;
  codeVerifier: string;
  nonce: string;
  /** SHA-256 of the binding handed to the browser that began the flow (never in a URL). */
  bindingHash: string;
}

/** An identity the provider vouched for that no user has linked yet. */
export interface PendingIdentity {
  provider: string;
  subject: string;
  email: string;
  name: string;
}

/** Begun sign-ins and unlinked identities: single-use, short-lived, in Redis. */
export interface OidcStateRepository {
  saveFlow(state: string, flow: OidcFlow, ttlSeconds: number): Promise<void>;
  /** The flow and its deletion in one step (GETDEL): null if unknown, used or expired. */
  takeFlow(state: string): Promise<OidcFlow | null>;
  /** Keyed by the link token's hash. */
  savePending(tokenHash: string, identity: PendingIdentity, ttlSeconds: number): Promise<void>;
  /** GETDEL as well: a link token links once. */
  takePending(tokenHash: string): Promise<PendingIdentity | null>;
}

/** States and link tokens are 43 characters of base64url; anything much longer is not one. */
const MAX_KEY_LENGTH = 128;

export function createOidcStateRepository(redis: Redis): OidcStateRepository {
  // The client adds REDIS_KEY_PREFIX.
  const flowKey = (state: string) => `auth:oidc-state:${state}`;
  const pendingKey = (token: string) => `auth:oidc-link:${token}`;
  const take = async <T>(key: string, id: string): Promise<T | null> => {
    if (!id || id.length > MAX_KEY_LENGTH) return null;
    const value = await redis.getdel(key);
    return value ? (JSON.parse(value) as T) : null;
  };
  return {
    async saveFlow(state, flow, ttlSeconds) {
      await redis.set(flowKey(state), JSON.stringify(flow), 'EX', ttlSeconds);
    },
    takeFlow(state) {
      return take<OidcFlow>(flowKey(state), state);
    },
    async savePending(token, identity, ttlSeconds) {
      await redis.set(pendingKey(token), JSON.stringify(identity), 'EX', ttlSeconds);
    },
    takePending(token) {
      return take<PendingIdentity>(pendingKey(token), token);
    },
  };
}
