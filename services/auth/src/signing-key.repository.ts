import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { PrismaClient, SigningKey } from '@platform/db';
import { ACCESS_TOKEN_ALGORITHM, type PublicJwk } from '@platform/tokens';

/**
 * How long a retired key stays published: longer than any access token it signed lives
 * (ACCESS_TOKEN_TTL is at most a day).
 */
const RETIRED_KEY_PUBLISHED_MS = 24 * 60 * 60 * 1000;

export interface SigningKeyRepository {
  /**
   * The key new tokens are signed with: created on first start, and replaced by a new one
   * when it is older than `maxAgeMs` (the old one is retired but stays published).
   */
  ensureActiveKey(maxAgeMs: number): Promise<SigningKey>;
  /** Public keys of the active key and of retired keys whose tokens may still be valid. */
  publishedKeys(): Promise<PublicJwk[]>;
}

function newKey(): { kid: string; publicJwk: PublicJwk; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomUUID();
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    kid,
    publicJwk: {
      kid,
      kty: 'EC',
      crv: 'P-256',
      x: jwk.x ?? '',
      y: jwk.y ?? '',
      alg: ACCESS_TOKEN_ALGORITHM,
      use: 'sig',
    },
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

export function createSigningKeyRepository(db: PrismaClient): SigningKeyRepository {
  return {
    async ensureActiveKey(maxAgeMs) {
      // Several instances may start at once: a transaction-scoped advisory lock lets one act.
      return db.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))`);
        const active = await tx.signingKey.findFirst({
          where: { retiredAt: null },
          orderBy: { createdAt: 'desc' },
        });
        if (active && Date.now() - active.createdAt.getTime() < maxAgeMs) return active;
        if (active)
          await tx.signingKey.update({
            where: { kid: active.kid },
            data: { retiredAt: new Date() },
          });
        const key = newKey();
        return tx.signingKey.create({
          data: {
            kid: key.kid,
            algorithm: ACCESS_TOKEN_ALGORITHM,
            publicJwk: { ...key.publicJwk },
            privateKeyPem: key.privateKeyPem,
          },
        });
      });
    },
    async publishedKeys() {
      const keys = await db.signingKey.findMany({
        where: {
          OR: [
            { retiredAt: null },
            { retiredAt: { gt: new Date(Date.now() - RETIRED_KEY_PUBLISHED_MS) } },
          ],
        },
        orderBy: { createdAt: 'desc' },
        select: { publicJwk: true },
      });
      return keys.map((key) => key.publicJwk as unknown as PublicJwk);
    },
  };
}
