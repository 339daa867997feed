import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from './token.verifier';
import type { PublicJwk } from './token.types';

function makeKey(kid: string): { privateKey: KeyObject; jwk: PublicJwk } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const exported = publicKey.export({ format: 'jwk' });
  return {
    privateKey,
    jwk: { kid, kty: 'EC', crv: 'P-256', x: exported.x!, y: exported.y!, alg: 'ES256', use: 'sig' },
  };
}

describe('createTokenVerifier', () => {
  const issuer = 'platform';
  const audience = 'platform-api';
  let key: ReturnType<typeof makeKey>;
  let other: ReturnType<typeof makeKey>;
  const sign = (payload: object, privateKey: KeyObject, options: jwt.SignOptions = {}) =>
    jwt.sign(payload, privateKey, {
      algorithm: 'ES256',
      keyid: 'k1',
      issuer,
      audience,
      expiresIn: 60,
      ...options,
    });

  beforeAll(() => {
    key = makeKey('k1');
    other = makeKey('k1');
  });

  const verifier = () =>
    createTokenVerifier({ issuer, audience, fetchJwks: async () => [key.jwk] });

  it('accepts a token signed by a published key and returns the identity', async () => {
    const token = sign({ sub: 'user-1', sid: 'session-1' }, key.privateKey);
    await expect(verifier().verify(token)).resolves.toEqual({
      userId: 'user-1',
      sessionId: 'session-1',
    });
  });

  it.each([
    ['signed by another key', () => sign({ sub: 'u', sid: 's' }, other.privateKey)],
    [
      'expired',
      () =>
        sign({ sub: 'u', sid: 's', iat: Math.floor(Date.now() / 1000) - 120 }, key.privateKey, {
          expiresIn: 60,
        }),
    ],
    [
      'for another audience',
      () => sign({ sub: 'u', sid: 's' }, key.privateKey, { audience: 'other' }),
    ],
    ['from another issuer', () => sign({ sub: 'u', sid: 's' }, key.privateKey, { issuer: 'evil' })],
    [
      'with alg none',
      () =>
        jwt.sign({ sub: 'u', sid: 's', iss: issuer, aud: audience }, null, {
          algorithm: 'none',
          keyid: 'k1',
        }),
    ],
    [
      'with a symmetric algorithm',
      () =>
        jwt.sign({ sub: 'u', sid: 's' }, 'secret', {
          algorithm: 'HS256',
          keyid: 'k1',
          issuer,
          audience,
        }),
    ],
    [
      'tampered',
      () => {
        const [header, , signature] = sign({ sub: 'u', sid: 's' }, key.privateKey).split('.');
        const forged = Buffer.from(
          JSON.stringify({ sub: 'admin', sid: 's', iss: issuer, aud: audience, exp: 9999999999 }),
        ).toString('base64url');
        return `${header}.${forged}.${signature}`;
      },
    ],
    ['without a session id', () => sign({ sub: 'u' }, key.privateKey)],
  ])('refuses a token %s', async (_name, make) => {
    await expect(verifier().verify(make())).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('treats a missing header as anonymous and a malformed one as an error', async () => {
    await expect(verifier().verifyHeader(undefined)).resolves.toBeNull();
    await expect(verifier().verifyHeader('Basic abc')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });
});
