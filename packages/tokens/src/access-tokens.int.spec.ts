import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createTestRun, type TestRun } from '@platform/testing';
import { createAccessTokens, type JwksSource } from './access-tokens';
import { createTokenSigner } from './token.signer';
import type { PublicJwk } from './token.types';

const issuer = 'platform';
const audience = 'platform-api';

function signingKey(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { x, y } = publicKey.export({ format: 'jwk' });
  const jwk: PublicJwk = { kid, kty: 'EC', crv: 'P-256', x: x!, y: y!, alg: 'ES256', use: 'sig' };
  const signer = createTokenSigner({
    issuer,
    audience,
    ttlSeconds: 60,
    key: { kid, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
  });
  return { jwk, signer };
}

describe(createAccessTokens.name, () => {
  let run: TestRun;
  let redis: Redis;
  const key = signingKey('k1');
  const jwks: JwksSource = { getJwks: async () => ({ keys: [key.jwk] }) };

  beforeAll(async () => {
    run = await createTestRun();
    redis = await createRedis({
      url: run.redisUrl,
      keyPrefix: run.redisKeyPrefix,
      logger: createLogger({ name: 'tokens-test', level: 'silent' }),
    });
  });

  afterAll(async () => {
    await redis.quit();
    await run.close();
  });

  it('accepts a token signed with a published key until its session is ended', async () => {
    const tokens = createAccessTokens({ issuer, audience, redis, jwks });
    const token = key.signer.sign({ userId: 'user-1', sessionId: 'session-1' });

    await expect(tokens.verifier.verify(token)).resolves.toMatchObject({
      userId: 'user-1',
      sessionId: 'session-1',
    });
    await tokens.revocations.revoke(['session-1'], 60);
    await expect(tokens.verifier.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('sees a session ended by another instance sharing the Redis', async () => {
    const writer = createAccessTokens({ issuer, audience, redis, jwks });
    const reader = createAccessTokens({ issuer, audience, redis, jwks });
    const token = key.signer.sign({ userId: 'user-2', sessionId: 'session-2' });
    await expect(reader.verifier.verifyHeader(`Bearer ${token}`)).resolves.not.toBeNull();

    await writer.revocations.revoke(['session-2'], 60);

    await expect(reader.verifier.verifyHeader(`Bearer ${token}`)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  it('publishes the keys the auth service serves', async () => {
    const tokens = createAccessTokens({ issuer, audience, redis, jwks });
    await expect(tokens.fetchJwks()).resolves.toEqual([key.jwk]);
  });
});
