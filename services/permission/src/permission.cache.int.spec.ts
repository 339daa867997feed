import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import {
  createTcpProxy,
  createTestRun,
  eventually,
  startRedisServer,
  type TestRun,
} from '@platform/testing';
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
      return { permissions: stored, validUntil: null };
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

  it('keeps one entry for all the scopes a user holds nothing in: asking for many adds none', async () => {
    const [first, second] = [await instance(), await instance()];
    const user = '00000000-0000-4000-8000-00000000000a';
    // Globally users:read; in tenant:acme also users:write.
    let assigned = ['tenant:acme'];
    let loads = 0;
    const load = (scope: string) => async () => {
      loads++;
      return {
        permissions: assigned.includes(scope) ? ['users:read', 'users:write'] : ['users:read'],
        validUntil: null,
        assignedScopes: assigned,
      };
    };
    const grantKeys = async () =>
      (await clients[0]!.keys(`${run.redisKeyPrefix}rbac:grant:${user}:*`)).length;

    for (let n = 0; n < 200; n++)
      expect(await first.get(user, `tenant:${n}`, load(`tenant:${n}`))).toEqual(['users:read']);
    expect(await second.get(user, 'tenant:other', load('tenant:other'))).toEqual(['users:read']);
    expect(await second.get(user, '', load(''))).toEqual(['users:read']);
    expect(loads).toBe(1);
    expect(await grantKeys()).toBe(1);

    // The scope the user holds an assignment in has its own entry, on either instance.
    expect(await second.get(user, 'tenant:acme', load('tenant:acme'))).toEqual([
      'users:read',
      'users:write',
    ]);
    expect(await first.get(user, 'tenant:acme', load('tenant:acme'))).toEqual([
      'users:read',
      'users:write',
    ]);
    expect(loads).toBe(2);
    expect(await grantKeys()).toBe(2);

    // A new assignment in one of those scopes is seen at once, on both instances.
    assigned = ['tenant:acme', 'tenant:7'];
    await first.forgetUser(user);
    for (const cache of [second, first])
      expect(await cache.get(user, 'tenant:7', load('tenant:7'))).toEqual([
        'users:read',
        'users:write',
      ]);
    expect(await first.get(user, 'tenant:8', load('tenant:8'))).toEqual(['users:read']);
  });

  it('uses an entry, in this process and from Redis, only until its end (an MFA grace end)', async () => {
    const [first, second] = [await instance(), await instance()];
    const user = '00000000-0000-4000-8000-000000000099';
    let loads = 0;
    let until = Date.now() + 1_000;
    const load = async () => {
      loads++;
      return { permissions: ['users:read'], validUntil: new Date(until) };
    };
    expect(await first.get(user, '', load)).toEqual(['users:read']);
    expect(await second.get(user, '', load)).toEqual(['users:read']);
    expect(loads).toBe(1);
    until = Date.now() + 60_000;
    // Past the end: both instances load again, without any version change.
    await eventually(async () => {
      await first.get(user, '', load);
      await second.get(user, '', load);
      expect(loads).toBeGreaterThanOrEqual(2);
    }, 5_000);
    const afterEnd = loads;
    await first.get(user, '', load);
    await second.get(user, '', load);
    expect(loads).toBe(afterEnd);
    // An entry that ends at once (an answer that could not be sure) is not kept.
    const unsure = async () => {
      loads++;
      return { permissions: [], validUntil: new Date() };
    };
    await first.forgetUser(user);
    await first.get(user, '', unsure);
    await first.get(user, '', unsure);
    expect(loads).toBe(afterEnd + 2);
  });

  const unprefixed = () =>
    createRedis({
      url: run.redisUrl,
      keyPrefix: '',
      logger: createLogger({ name: 'cache-test', level: 'silent' }),
    });

  /** What a Redis restart without persistence does: every key of this run is gone. */
  async function loseEverything(): Promise<void> {
    const raw = await unprefixed();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await raw.scan(
          cursor,
          'MATCH',
          `${run.redisKeyPrefix}*`,
          'COUNT',
          500,
        );
        if (keys.length > 0) await raw.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      await raw.quit();
    }
  }

  /** Only this user's version is gone (evicted, expired), everything else stays. */
  async function loseUserVersion(userId: string): Promise<void> {
    const raw = await unprefixed();
    try {
      await raw.del(`${run.redisKeyPrefix}rbac:version:user:${userId}`);
    } finally {
      await raw.quit();
    }
  }

  const changes = {
    user: (cache: PermissionCache, userId: string) => cache.forgetUser(userId),
    roles: (cache: PermissionCache) => cache.forgetRoles(),
  } as const;

  for (const [what, change] of Object.entries(changes))
    it(`never gives back a revoked permission after Redis lost its data, on either instance (${what} changes), every time`, async () => {
      for (let round = 0; round < 5; round++) {
        const user = `00000000-0000-4000-8000-00000000010${round}`;
        const [first, second] = [await instance(), await instance()];
        // The database: what the user holds now.
        let stored: string[] = [];
        const load = async () => ({ permissions: stored, validUntil: null });

        // Granted; both instances check and keep the answer.
        stored = ['users:delete'];
        await change(first, user);
        expect(await first.get(user, '', load)).toEqual(['users:delete']);
        expect(await second.get(user, '', load)).toEqual(['users:delete']);

        // Revoked; only the first instance checks again before Redis loses everything.
        stored = [];
        await change(first, user);
        expect(await first.get(user, '', load)).toEqual([]);
        await loseEverything();

        // As many changes after the loss as before it (each bumps once): a counter would be back
        // at the value the second instance still holds with the revoked permission.
        await change(first, user);
        expect(await second.get(user, '', load)).toEqual([]);
        expect(await first.get(user, '', load)).toEqual([]);
      }
    });

  it('never gives back a revoked permission when only the user’s version was lost (evicted), every time', async () => {
    for (let round = 0; round < 5; round++) {
      const user = `00000000-0000-4000-8000-00000000020${round}`;
      const [first, second] = [await instance(), await instance()];
      let stored = ['users:delete'];
      const load = async () => ({ permissions: stored, validUntil: null });
      // Never changed before: both instances keep the answer under the user's first version.
      expect(await first.get(user, '', load)).toEqual(['users:delete']);
      expect(await second.get(user, '', load)).toEqual(['users:delete']);

      stored = [];
      await first.forgetUser(user);
      expect(await first.get(user, '', load)).toEqual([]);
      await loseUserVersion(user);

      expect(await second.get(user, '', load)).toEqual([]);
      expect(await first.get(user, '', load)).toEqual([]);
    }
  });

  it('agrees on one version when many instances find it missing at once, every time', async () => {
    const instances = await Promise.all(Array.from({ length: 4 }, () => instance()));
    for (let round = 0; round < 10; round++) {
      const user = `00000000-0000-4000-8000-0000000003${String(round).padStart(2, '0')}`;
      await loseEverything();
      let loads = 0;
      const load = async () => {
        loads++;
        return { permissions: ['users:read'], validUntil: null };
      };
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, index) => instances[index % 4]!.get(user, '', load)),
      );
      expect(answers).toEqual(Array(40).fill(['users:read']));
      // One version for all: once the burst is over, no instance loads again.
      const settled = loads;
      await Promise.all(instances.map((cache) => cache.get(user, '', load)));
      expect(loads).toBe(settled);
    }
  });
});

describe('permission cache when Redis rolls back', () => {
  it('does not grant again what was revoked when a failover hands back the versions of before', async () => {
    const [primary, replica] = await Promise.all([startRedisServer(), startRedisServer()]);
    const proxy = await createTcpProxy({ host: '127.0.0.1', port: primary.port });
    const logger = createLogger({ name: 'cache-test', level: 'silent' });
    const clients = await Promise.all([
      ...[primary, replica].map((server) =>
        createRedis({ url: server.url, keyPrefix: '', logger }),
      ),
      // Two instances of the permission service, each with its connection to the address.
      ...[1, 2].map(() =>
        createRedis({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: 'rb:', logger }),
      ),
    ]);
    const [rawPrimary, rawReplica, redisOne, redisTwo] = clients as [Redis, Redis, Redis, Redis];
    try {
      const [first, second] = [createPermissionCache(redisOne), createPermissionCache(redisTwo)];
      let stored = ['users:delete'];
      const load = async () => ({ permissions: stored, validUntil: null });
      expect(await first.get(USER, '', load)).toEqual(['users:delete']);
      expect(await second.get(USER, '', load)).toEqual(['users:delete']);

      // Asynchronous replication: the replica holds the versions as they were then.
      for (const key of await rawPrimary.keys('rb:*')) {
        const dump = await rawPrimary.dumpBuffer(key);
        await rawReplica.restore(key, 0, dump);
      }
      // The revocation, on the primary only; one instance checks again.
      stored = [];
      await first.forgetUser(USER);
      expect(await first.get(USER, '', load)).toEqual([]);

      // Failover: the address reaches the replica, whose versions are those of before.
      proxy.retarget({ host: '127.0.0.1', port: replica.port });
      await eventually(async () => expect(await second.get(USER, '', load)).toEqual([]));
      expect(await first.get(USER, '', load)).toEqual([]);
    } finally {
      for (const client of clients) client.disconnect();
      await proxy.close();
      await Promise.all([primary.stop(), replica.stop()]);
    }
  });
});
