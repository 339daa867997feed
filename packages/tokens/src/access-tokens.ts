import type { Redis } from '@platform/redis';
import { createSessionRevocations, type SessionRevocations } from './session-revocation';
import type { PublicJwk } from './token.types';
import { createTokenVerifier, type TokenVerifier } from './token.verifier';

/**
 * What verifiers need from the auth service (its gRPC client fits): the published signing keys
 * (`GetJwks`), and the rebuild of the Redis copy of ended sessions after Redis lost it
 * (`RestoreRevocations`).
 */
export interface JwksSource {
  getJwks(request: Record<string, never>): Promise<{ keys: readonly PublicJwk[] }>;
  restoreRevocations(request: Record<string, never>): Promise<{ restored: number }>;
}

export interface AccessTokensOptions {
  issuer: string;
  audience: string;
  /** Holds the copy of ended sessions, written by the auth service. */
  redis: Redis;
  /** The auth service. */
  jwks: JwksSource;
}

/** Everything an app needs to accept access tokens: the one wiring of gateway and subgraphs. */
export interface AccessTokens {
  verifier: TokenVerifier;
  /** Ended sessions, also asked by long-lived connections after their token was accepted. */
  revocations: SessionRevocations;
  /** The current JSON Web Key Set, as the auth service publishes it. */
  readonly fetchJwks: () => Promise<readonly PublicJwk[]>;
}

export function createAccessTokens(options: AccessTokensOptions): AccessTokens {
  const auth = options.jwks;
  // Redis lost the copy: the auth service rebuilds it from the database before any answer.
  const revocations = createSessionRevocations(options.redis, {
    rebuild: () => auth.restoreRevocations({}),
  });
  const fetchJwks = async () => (await auth.getJwks({})).keys;
  const verifier = createTokenVerifier({
    issuer: options.issuer,
    audience: options.audience,
    fetchJwks,
    // Ended sessions are looked up on every use, so their access tokens stop working at once.
    isRevoked: (sessionId) => revocations.isRevoked(sessionId),
  });
  return { verifier, revocations, fetchJwks };
}
