import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { SigningKey } from '@platform/db';
import { ACCESS_TOKEN_ALGORITHM, type PublicJwk } from '@platform/tokens';
import type { AuthTransactions } from './auth.transactions';
import type { NewSigningKey, SigningKeyRepository } from './signing-key.repository';

/**
 * How long a retired key stays published: longer than any access token it signed lives
 * (ACCESS_TOKEN_TTL is at most a day).
 */
export const RETIRED_KEY_PUBLISHED_MS = 24 * 60 * 60 * 1000;

/** The keys access tokens are signed with, and the public half verifiers fetch. */
export interface SigningKeyService {
  /**
   * The key new tokens are signed with: created on first start, and replaced by a new one
   * when it is older than `maxAgeMs` (the old one is retired but stays published).
   */
  ensureActiveKey(maxAgeMs: number): Promise<SigningKey>;
  /** Public keys of the active key and of retired keys whose tokens may still be valid. */
  publishedKeys(): Promise<PublicJwk[]>;
}

export interface SigningKeyServiceDeps {
  signingKeys: SigningKeyRepository;
  transactions: AuthTransactions;
  clock?: () => Date;
}

function newKey(createdAt: Date): NewSigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomUUID();
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    kid,
    algorithm: ACCESS_TOKEN_ALGORITHM,
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
    createdAt,
  };
}

export function createSigningKeyService(deps: SigningKeyServiceDeps): SigningKeyService {
  const { signingKeys, transactions } = deps;
  const clock = deps.clock ?? (() => new Date());

  return {
    ensureActiveKey(maxAgeMs) {
      // Several instances may start at once: the lock lets one act, the others see its key.
      return transactions.run(async ({ client }) => {
        await signingKeys.lock(client);
        const active = await signingKeys.findActive(client);
        const now = clock();
        if (active && now.getTime() - active.createdAt.getTime() < maxAgeMs) return active;
        if (active) await signingKeys.retire(client, active.kid, now);
        return signingKeys.create(client, newKey(now));
      });
    },

    publishedKeys() {
      return signingKeys.listPublic(new Date(clock().getTime() - RETIRED_KEY_PUBLISHED_MS));
    },
  };
}
