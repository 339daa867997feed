export {
  createTokenVerifier,
  type Identity,
  type TokenVerifier,
  type TokenVerifierOptions,
} from './token.verifier';
export { ACCESS_TOKEN_ALGORITHM, type PublicJwk } from './token.types';
