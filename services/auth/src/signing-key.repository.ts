import type { PrismaClient, SigningKey } from '@platform/db';
import type { PublicJwk } from '@platform/tokens';
import type { AuthTx } from './auth.transactions';

export interface NewSigningKey {
  kid: string;
  algorithm: string;
  publicJwk: PublicJwk;
  privateKeyPem: string;
  createdAt: Date;
}

export interface SigningKeyRepository {
  /** Holds off every other instance's key management until `tx` ends. */
  lock(tx: AuthTx): Promise<void>;
  /** The newest key not retired. */
  findActive(tx: AuthTx): Promise<SigningKey | null>;
  retire(tx: AuthTx, kid: string, at: Date): Promise<void>;
  create(tx: AuthTx, key: NewSigningKey): Promise<SigningKey>;
  /** Public keys of the keys not retired, or retired after `retiredAfter`; newest first. */
  listPublic(retiredAfter: Date): Promise<PublicJwk[]>;
}

export function createSigningKeyRepository(db: PrismaClient): SigningKeyRepository {
  return {
    async lock(tx) {
      // Transaction-scoped: released by the commit or rollback.
      await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))`);
    },
    findActive(tx) {
      return tx.signingKey.findFirst({
        where: { retiredAt: null },
        orderBy: { createdAt: 'desc' },
      });
    },
    async retire(tx, kid, at) {
      await tx.signingKey.update({ where: { kid }, data: { retiredAt: at } });
    },
    create(tx, key) {
      return tx.signingKey.create({ data: { ...key, publicJwk: { ...key.publicJwk } } });
    },
    async listPublic(retiredAfter) {
      const keys = await db.signingKey.findMany({
        where: { OR: [{ retiredAt: null }, { retiredAt: { gt: retiredAfter } }] },
        orderBy: { createdAt: 'desc' },
        select: { publicJwk: true },
      });
      return keys.map((key) => key.publicJwk as unknown as PublicJwk);
    },
  };
}
