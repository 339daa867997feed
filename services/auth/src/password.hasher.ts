import { hash, verify } from '@node-rs/argon2';

// Algorithm.Argon2id (a const enum, which isolated modules cannot import).
const ARGON2ID = 2;

// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane. Runs on libuv's thread pool.
const OPTIONS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /**
   * Checks a password against a stored hash; with no hash (unknown user) it checks against a
   * dummy one, so the answer takes as long as for a real user.
   */
  verify(storedHash: string | undefined, password: string): Promise<boolean>;
}

export async function createPasswordHasher(): Promise<PasswordHasher> {
  const dummyHash = await hash('not-a-real-password', OPTIONS);
  return {
    hash: (password) => hash(password, OPTIONS),
    async verify(storedHash, password) {
      const matches = await verify(storedHash ?? dummyHash, password).catch(() => false);
      return storedHash !== undefined && matches;
    },
  };
}
