import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createTestRun, type TestRun } from '@platform/testing';
import { createPermissionCache, type PermissionCache } from './permission.cache';

const USER = '00000000-0000-4000-8000-000000000001';

describe('permission cache (two instances on one Redis)', () => {
  let run: TestRun;
  const clients: Redis[] = [];

  beforeAll(async () => {
    run = await createTestRun();
  });

  afterAll(async () => {
    for (const client of clients) await client.quit();
    await run.close();
  });

  async function instance(): Promise<PermissionCache> {
    const redis = await createRedis({
      url: run.redisUrl,
      keyPrefix: run.redisKeyPrefix,
      logger: createLogger({ name: 'cache-test', level: 'silent' }),
    });
    clients.push(redis);
    return createPermissionCache(redis);
  }

  it('loads once, then answers from the cache; a bump on one instance is seen by the other at once', async () => {
    const [first, second] = [await instance(), await instance()];
    let stored = ['users:read'];
    let loads = 0;
    const load = async () => {
      loads++;
      return stored;
    };

    expect(await first.get(USER, '', load)).toEqual(['users:read']);
    expect(await second.get(USER, '', load)).toEqual(['users:read']);
    expect(await first.get(USER, '', load)).toEqual(['users:read']);
    expect(loads).toBe(1);

    for (let round = 0; round < 20; round++) {
      stored = round % 2 === 0 ? [] : ['users:read'];
      await (round % 2 === 0 ? first : second).forgetUser(USER);
      expect(await second.get(USER, '', load)).toEqual(stored);
      expect(await first.get(USER, '', load)).toEqual(stored);
    }

    // A role change reaches every user's entries, in every scope.
    stored = ['audit:read'];
    await second.forgetRoles();
    expect(await first.get(USER, 'tenant:acme', load)).toEqual(['audit:read']);
    expect(await first.get(USER, '', load)).toEqual(['audit:read']);
  });
});
