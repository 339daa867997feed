import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** One AES-256 key and the id stored beside every ciphertext it seals. */
export interface SecretKey {
  id: string;
  key: Buffer;
}

/**
 * Seals small secrets (TOTP secrets) at rest: AES-256-GCM with a random 96-bit IV, the owner's
 * id as associated data (a sealed value copied to another user's row does not open). The
 * first key seals; every key opens, so keys can be rotated (docs/identity.md).
 */
export interface SecretBox {
  seal(plaintext: string, owner: string): string;
  /** Throws when the key is unknown or the value was tampered with. */
  open(sealed: string, owner: string): string;
  /** The id of the key that sealed it. */
  keyIdOf(sealed: string): string;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Parses `id:base64key[,id:base64key...]` (each key 32 bytes, standard or url-safe base64);
 * the first seals. Throws a message naming the problem, never the key.
 */
export function parseSecretKeys(text: string): SecretKey[] {
  const keys = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.indexOf(':');
      const id = entry.slice(0, colon);
      if (colon < 1 || !KEY_ID.test(id))
        throw new Error('each key must be "<id>:<base64 of 32 bytes>", id of [A-Za-z0-9_-]');
      const key = Buffer.from(entry.slice(colon + 1), 'base64');
      if (key.length !== 32) throw new Error(`key "${id}" must be 32 bytes (base64)`);
      return { id, key };
    });
  if (keys.length === 0) throw new Error('at least one key is required');
  if (new Set(keys.map((k) => k.id)).size !== keys.length)
    throw new Error('key ids must be unique');
  return keys;
}

export function createSecretBox(keys: readonly SecretKey[]): SecretBox {
  const [active] = keys;
  if (!active) throw new Error('a secret box needs a key');
  const byId = new Map(keys.map((k) => [k.id, k.key]));

  return {
    seal(plaintext, owner) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', active.key, iv);
      cipher.setAAD(Buffer.from(owner, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [active.id, iv, ciphertext, cipher.getAuthTag()]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.');
    },

    open(sealed, owner) {
      const [id, iv, ciphertext, tag, ...rest] = sealed.split('.');
      if (!id || !iv || !ciphertext || !tag || rest.length > 0)
        throw new Error('not a sealed secret');
      const key = byId.get(id);
      if (!key) throw new Error(`sealed with an unknown key "${id}"`);
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(owner, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    },

    keyIdOf(sealed) {
      return sealed.split('.', 1)[0] ?? '';
    },
  };
}
