/** Access tokens are signed with ECDSA P-256; verifiers accept nothing else. */
export const ACCESS_TOKEN_ALGORITHM = 'ES256';

export interface PublicJwk {
  kid: string;
  kty: string;
  crv: string;
  x: string;
  y: string;
  alg: string;
  use: string;
}
