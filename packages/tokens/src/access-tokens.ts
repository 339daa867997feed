import type { Redis } from '@platform/redis';
import { createSessionRevocations, type SessionRevocations } from './session-revocation';
import type { PublicJwk } from './token.types';
import { createTokenVerifier, type TokenVerifier } from './token.verifier';

/** Where the published signing keys come from: the auth service's `GetJwks`. */
export interface JwksSource {
  getJwks(request: Record<string, never>): Promise<{ keys: readonly PublicJwk[] }>;
}

export interface AccessTokensOptions {
  issuer: string;
  audience: string;
  /** Holds the ended sessions, written by the auth service. */
  redis: Redis;
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
  const revocations = createSessionRevocations(options.redis);
  const fetchJwks = async () => (await options.jwks.getJwks({})).keys;
  const verifier = createTokenVerifier({
    issuer: options.issuer,
    audience: options.audience,
    fetchJwks,
    // Ended sessions are looked up on every use, so their access tokens stop working at once.
    isRevoked: (sessionId) => revocations.isRevoked(sessionId),
  });
  return { verifier, revocations, fetchJwks };
}
