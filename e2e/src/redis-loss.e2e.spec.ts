import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { signUp, type SignedIn } from './graphql.client';

/**
 * Redis is a cache, never the only copy of a security decision (docs/resilience.md): what a
 * Redis restart without persistence does to this run's keys must not bring an ended session
 * back. The keys are this run's only (its prefix): the machine's Redis is shared.
 */

async function me(gateway: string, token: string) {
  const response = await fetch(`${gateway}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ me { id } }' }),
  });
  const body = (await response.json()) as {
    data?: { me: { id: string } | null } | null;
    errors?: { extensions?: Record<string, unknown> }[];
  };
  return {
    status: response.status,
    id: body.data?.me?.id,
    code: body.errors?.[0]?.extensions?.['code'],
    reason: body.errors?.[0]?.extensions?.['reason'],
  };
}

describe('an ended session stays ended when Redis loses its data', () => {
  let platform: Platform | undefined;
  let gateway: string;
  let redis: Redis;
  let accounts = 0;

  beforeAll(async () => {
    platform = await startPlatform();
    gateway = platform.gateway;
    redis = new Redis(platform.run.redisUrl);
  });

  afterAll(async () => {
    await redis.quit();
    await stopPlatform(platform);
  });

  /** Deletes this run's keys matching `pattern` (after the run's prefix); says how many. */
  async function loseKeys(pattern: string): Promise<number> {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${platform!.run.redisKeyPrefix}${pattern}`,
        'COUNT',
        1000,
      );
      if (keys.length > 0) deleted += await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    return deleted;
  }

  const newAccount = () => signUp(gateway, `redis-loss-${++accounts}@example.com`);

  async function logout(user: SignedIn) {
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: 'mutation { logout }' }),
    });
    expect(await response.json()).toEqual({ data: { logout: true } });
  }

  async function expectEnded(user: SignedIn) {
    expect(await me(gateway, user.token)).toEqual({
      status: 401,
      id: undefined,
      code: 'UNAUTHENTICATED',
      reason: 'SESSION_ENDED',
    });
  }

  async function expectLive(user: SignedIn) {
    expect(await me(gateway, user.token)).toMatchObject({ status: 200, id: user.id });
  }

  it('refuses the ended session’s access token after the revocation data alone is lost', async () => {
    const [ended, live] = [await newAccount(), await newAccount()];
    await logout(ended);
    await expectEnded(ended);

    // The ended sessions' keys, and nothing else (the revoked-session data, whatever its layout).
    expect(await loseKeys('auth:revoked-session*')).toBeGreaterThan(0);

    await expectEnded(ended);
    await expectLive(live);
  });

  it('refuses it after every key of the run is lost (a Redis restart), under a burst of requests, every time', async () => {
    for (let round = 0; round < 3; round++) {
      const [ended, live] = [await newAccount(), await newAccount()];
      await logout(ended);
      await expectEnded(ended);

      expect(await loseKeys('*')).toBeGreaterThan(0);

      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, index) => me(gateway, (index % 2 ? live : ended).token)),
      );
      for (const [index, answer] of answers.entries())
        expect(answer).toMatchObject(
          index % 2
            ? { status: 200, id: live.id }
            : { status: 401, code: 'UNAUTHENTICATED', reason: 'SESSION_ENDED' },
        );
    }
  });

  it('refuses a session ended while the data is gone, and the ones ended before', async () => {
    const [before, during, live] = [await newAccount(), await newAccount(), await newAccount()];
    await logout(before);
    await loseKeys('*');

    await logout(during);

    await expectEnded(during);
    await expectEnded(before);
    await expectLive(live);
  });
});
