export {
  createTokenVerifier,
  sessionRefusal,
  type Identity,
  type TokenVerifier,
  type TokenVerifierOptions,
} from './token.verifier';
export { ACCESS_TOKEN_ALGORITHM, type PublicJwk } from './token.types';
export {
  completeMarker,
  createSessionRevocations,
  REVOKED_SESSIONS_KEY,
  type RevokedSession,
  type SessionRevocations,
  type SessionRevocationsOptions,
} from './session-revocation';
export {
  createTokenSigner,
  type SigningKeyMaterial,
  type TokenSigner,
  type TokenSignerOptions,
} from './token.signer';
export {
  createAccessTokens,
  type AccessTokens,
  type AccessTokensOptions,
  type JwksSource,
} from './access-tokens';
