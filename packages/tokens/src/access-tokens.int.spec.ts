import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createTestRun, type TestRun } from '@platform/testing';
import { createAccessTokens, type AccessTokens, type JwksSource } from './access-tokens';
import { createSessionRevocations, REVOKED_SESSIONS_KEY } from './session-revocation';
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
  /** The auth service: its keys, and the sessions it ended (its database). */
  const ended: string[] = [];
  let restores = 0;
  const jwks: JwksSource = {
    getJwks: async () => ({ keys: [key.jwk] }),
    async restoreRevocations() {
      restores++;
      const writer = createSessionRevocations(redis, { rebuild: async () => undefined });
      await writer.restore(ended.map((sessionId) => ({ sessionId, ttlSeconds: 60 })));
      return { restored: ended.length };
    },
  };
  /** What the auth service does when it ends a session: the database, then Redis. */
  async function endSession(tokens: AccessTokens, sessionId: string) {
    ended.push(sessionId);
    await tokens.revocations.revoke([sessionId], 60);
  }

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
    await endSession(tokens, 'session-1');
    await expect(tokens.verifier.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('sees a session ended by another instance sharing the Redis', async () => {
    const writer = createAccessTokens({ issuer, audience, redis, jwks });
    const reader = createAccessTokens({ issuer, audience, redis, jwks });
    const token = key.signer.sign({ userId: 'user-2', sessionId: 'session-2' });
    await expect(reader.verifier.verifyHeader(`Bearer ${token}`)).resolves.not.toBeNull();

    await endSession(writer, 'session-2');

    await expect(reader.verifier.verifyHeader(`Bearer ${token}`)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  it('refuses an ended session’s token after Redis lost its data, asking the auth service once for a rebuild', async () => {
    const tokens = createAccessTokens({ issuer, audience, redis, jwks });
    const endedToken = key.signer.sign({ userId: 'user-3', sessionId: 'session-3' });
    const liveToken = key.signer.sign({ userId: 'user-4', sessionId: 'session-4' });
    await endSession(tokens, 'session-3');
    await expect(tokens.verifier.verify(endedToken)).rejects.toMatchObject({
      reason: 'SESSION_ENDED',
    });

    await redis.del(REVOKED_SESSIONS_KEY);
    const before = restores;
    const answers = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        tokens.verifier.verify(index % 2 === 0 ? endedToken : liveToken),
      ),
    );

    expect(answers.filter((answer) => answer.status === 'fulfilled')).toHaveLength(10);
    for (const [index, answer] of answers.entries())
      if (index % 2 === 0)
        expect(answer).toMatchObject({
          status: 'rejected',
          reason: { code: 'UNAUTHENTICATED', reason: 'SESSION_ENDED' },
        });
    expect(restores - before).toBe(1);
  });

  it('publishes the keys the auth service serves', async () => {
    const tokens = createAccessTokens({ issuer, audience, redis, jwks });
    await expect(tokens.fetchJwks()).resolves.toEqual([key.jwk]);
  });
});
