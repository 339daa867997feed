import { createHash, createHmac, randomBytes } from 'node:crypto';

/** How a refresh token or a mailed token looks: 32 random bytes, base64url. */
const OPAQUE_TOKEN = /^[\w-]{43}$/;

export interface OpaqueToken {
  /** What the client gets. */
  token: string;
  /** What is stored (SHA-256, hex): a leaked table holds no usable token. */
  hash: string;
}

/** 256 bits of randomness; only its hash is ever stored. */
export function newOpaqueToken(): OpaqueToken {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashOpaqueToken(token) };
}

export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Whether a string can be a token at all (anything else is refused without a query). */
export const isOpaqueToken = (value: string): boolean => OPAQUE_TOKEN.test(value);

/** A new key for `successorOf`: 256 random bits. */
export const newSuccessorKey = (): Uint8Array => randomBytes(32);

/**
 * The token that follows `token` in its chain: HMAC-SHA256 under `key`, so deriving it again
 * gives the same token, and nobody without the key can, whatever tokens they hold. Looks like
 * any other token (32 bytes, base64url); only its hash is stored.
 */
export function successorOf(token: string, key: Uint8Array): OpaqueToken {
  const successor = createHmac('sha256', key)
    .update('refresh-token-successor\0')
    .update(token)
    .digest('base64url');
  return { token: successor, hash: hashOpaqueToken(successor) };
}
