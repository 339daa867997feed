import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it, vi } from 'vitest';
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
      expiresAt: (jwt.decode(token) as { exp: number }).exp * 1000,
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
    // A header saying `typ: JWT` makes the decoder parse the payload as JSON.
    ['whose payload is not JSON', () => 'eyJ0eXAiOiJKV1QifQ.eA.x'],
    [
      'whose payload is not JSON, with a known key',
      () => {
        const header = Buffer.from(
          JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'k1' }),
        ).toString('base64url');
        return `${header}.${Buffer.from('{"sub":').toString('base64url')}.x`;
      },
    ],
    [
      'whose key id is not a string',
      () => {
        const [, payload, signature] = sign({ sub: 'u', sid: 's' }, key.privateKey).split('.');
        const header = Buffer.from(
          JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: { toString: 'k1' } }),
        ).toString('base64url');
        return `${header}.${payload}.${signature}`;
      },
    ],
    [
      'without an expiry',
      () =>
        jwt.sign({ sub: 'u', sid: 's' }, key.privateKey, {
          algorithm: 'ES256',
          keyid: 'k1',
          issuer,
          audience,
        }),
    ],
  ])('refuses a token %s', async (name, make) => {
    await expect(verifier().verify(make())).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: name === 'expired' ? 'TOKEN_EXPIRED' : 'TOKEN_INVALID',
    });
  });

  it('asks about revocation on every use of a token it has verified before', async () => {
    const ended = new Set<string>();
    const tokens = createTokenVerifier({
      issuer,
      audience,
      fetchJwks: async () => [key.jwk],
      isRevoked: async (sessionId) => ended.has(sessionId),
    });
    const token = sign({ sub: 'user-1', sid: 'session-1' }, key.privateKey);
    await expect(tokens.verify(token)).resolves.toMatchObject({ userId: 'user-1' });
    ended.add('session-1');
    await expect(tokens.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'SESSION_ENDED',
    });
  });

  it('refuses a token verified before once it has expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const tokens = verifier();
      const token = sign({ sub: 'user-1', sid: 'session-1' }, key.privateKey, { expiresIn: 60 });
      await expect(tokens.verify(token)).resolves.toMatchObject({ userId: 'user-1' });
      vi.setSystemTime(Date.now() + 61_000);
      await expect(tokens.verify(token)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        reason: 'TOKEN_EXPIRED',
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it('says a session has ended rather than that its token expired: refreshing would not help', async () => {
    const tokens = createTokenVerifier({
      issuer,
      audience,
      fetchJwks: async () => [key.jwk],
      isRevoked: async (sessionId) => sessionId === 'ended-session',
    });
    const expired = (sid: string) =>
      sign({ sub: 'u', sid, iat: Math.floor(Date.now() / 1000) - 120 }, key.privateKey, {
        expiresIn: 60,
      });
    await expect(tokens.verify(expired('ended-session'))).rejects.toMatchObject({
      reason: 'SESSION_ENDED',
    });
    await expect(tokens.verify(expired('live-session'))).rejects.toMatchObject({
      reason: 'TOKEN_EXPIRED',
    });
  });

  it('refuses a token verified before once its key is no longer published', async () => {
    let published = [key.jwk];
    const tokens = createTokenVerifier({
      issuer,
      audience,
      fetchJwks: async () => published,
      refreshIntervalMs: 0,
    });
    const token = sign({ sub: 'user-1', sid: 'session-1' }, key.privateKey);
    await expect(tokens.verify(token)).resolves.toMatchObject({ userId: 'user-1' });
    published = [makeKey('k2').jwk];
    // The key set is fetched again (the interval has passed) before the next verdict.
    await expect(tokens.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('keeps trusting the keys it holds while the key set cannot be fetched, and refuses unknown ones', async () => {
    let reachable = true;
    let fetches = 0;
    const tokens = createTokenVerifier({
      issuer,
      audience,
      fetchJwks: () => {
        fetches += 1;
        return reachable
          ? Promise.resolve([key.jwk])
          : Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:50051'));
      },
      refreshIntervalMs: 0,
    });
    const before = sign({ sub: 'user-1', sid: 'session-1' }, key.privateKey);
    await expect(tokens.verify(before)).resolves.toMatchObject({ userId: 'user-1' });
    reachable = false;
    // Tokens of the known key, seen before or not, still verify; the refresh is retried a
    // second later, not on every request.
    const fresh = sign({ sub: 'user-2', sid: 'session-2' }, key.privateKey);
    const fetchesBefore = fetches;
    await expect(tokens.verify(before)).resolves.toMatchObject({ userId: 'user-1' });
    await expect(tokens.verify(fresh)).resolves.toMatchObject({ userId: 'user-2' });
    await expect(tokens.verify(fresh)).resolves.toMatchObject({ userId: 'user-2' });
    expect(fetches - fetchesBefore).toBe(1);
    // A token of a key it has never seen cannot be checked: the outage is reported (the
    // refresh that failed a moment ago is not tried again yet).
    const unknown = sign({ sub: 'user-3', sid: 'session-3' }, makeKey('k9').privateKey, {
      keyid: 'k9',
    });
    await expect(tokens.verify(unknown)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(fetches - fetchesBefore).toBe(1);
  });

  it('treats a missing header as anonymous and a malformed one as an error', async () => {
    await expect(verifier().verifyHeader(undefined)).resolves.toBeNull();
    await expect(verifier().verifyHeader('Basic abc')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    // From a client's JSON (a subscribe's extensions): anything but a string is malformed.
    for (const header of [5, true, ['Bearer a.b.c'], { token: 'a.b.c' }]) {
      await expect(verifier().verifyHeader(header)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      await expect(verifier().genuineHeader(header)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    }
  });

  it('reads the Bearer scheme in any case (RFC 7235: schemes are case-insensitive)', async () => {
    const token = sign({ sub: 'user-1', sid: 'session-1' }, key.privateKey);
    for (const scheme of ['Bearer', 'bearer', 'BEARER'])
      await expect(verifier().verifyHeader(`${scheme} ${token}`)).resolves.toMatchObject({
        userId: 'user-1',
      });
    await expect(verifier().verifyHeader(`Bearerx ${token}`)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });
});
