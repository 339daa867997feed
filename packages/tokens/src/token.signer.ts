import { createPrivateKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ACCESS_TOKEN_ALGORITHM } from './token.types';

export interface SigningKeyMaterial {
  kid: string;
  privateKeyPem: string;
}

export interface TokenSignerOptions {
  issuer: string;
  audience: string;
  /** Access token lifetime. */
  ttlSeconds: number;
  key: SigningKeyMaterial;
}

export interface TokenSigner {
  readonly ttlSeconds: number;
  /** A short-lived access token for a user's session. */
  sign(identity: { userId: string; sessionId: string }): string;
}

export function createTokenSigner(options: TokenSignerOptions): TokenSigner {
  const privateKey: KeyObject = createPrivateKey(options.key.privateKeyPem);
  return {
    ttlSeconds: options.ttlSeconds,
    sign({ userId, sessionId }) {
      return jwt.sign({ sid: sessionId }, privateKey, {
        algorithm: ACCESS_TOKEN_ALGORITHM,
        keyid: options.key.kid,
        subject: userId,
        issuer: options.issuer,
        audience: options.audience,
        expiresIn: options.ttlSeconds,
      });
    },
  };
}
