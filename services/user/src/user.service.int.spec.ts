import { describe, expect, it } from 'vitest';
import { toAppError } from '@platform/errors';
import { createLogger } from '@platform/logger';
import { createRedis } from '@platform/redis';
import { createTcpProxy, createTestRun, eventually, latch } from '@platform/testing';
import { createUserCache } from './user.cache';
import { createUserService } from './user.service';
import { newUser } from './testing/user.factories';
import { useUserWorld, type UserWorld } from './testing/user.world';

const RACES = 10;

/**
 * Use cases whose database read returns the rows as they were, then waits for `release`: a read
 * held between its load and its write to the cache.
 */
function gatedReader(world: UserWorld) {
  const read = latch();
  const released = latch();
  const service = createUserService({
    users: {
      ...world.users,
      async findByIds(ids) {
        const rows = await world.users.findByIds(ids);
        read.open();
        await released.opened;
        return rows;
      },
    },
    cache: world.cache,
    relay: { kick: () => undefined },
  });
  return { service, wasRead: read.opened, release: released.open };
}

/** The use cases that own a transaction, raced on the real PostgreSQL, and the Redis cache. */
describe('UserService on PostgreSQL and Redis', () => {
  const world = useUserWorld();

  it('registers one of two users racing for one email, announces that one, refuses the other', async () => {
    for (let race = 0; race < RACES; race++) {
      const { email } = newUser();
      const outcomes = await Promise.allSettled([
        world.service.register(newUser({ email })),
        world.service.register(newUser({ email: email.toUpperCase() })),
      ]);
      const registered = outcomes.flatMap((outcome) =>
        outcome.status === 'fulfilled' ? [outcome.value] : [],
      );
      expect(registered).toHaveLength(1);
      expect(outcomes.find((outcome) => outcome.status === 'rejected')?.reason).toMatchObject({
        code: 'CONFLICT',
      });
      expect((await world.eventsOf(registered[0]!.id)).map((event) => event.type)).toEqual([
        'user.registered',
      ]);
      expect(await world.db.userOutboxEvent.count({ where: { type: 'user.registered' } })).toBe(
        race + 1,
      );
    }
  });

  it('announces each status change of racing updates, so the events end where the user does', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await world.service.register(newUser());
      await Promise.all([
        world.service.update(id, { status: 'DISABLED' }),
        world.service.update(id, { status: 'ACTIVE' }),
        world.service.update(id, { status: 'DISABLED' }),
      ]);
      const changes = (await world.eventsOf(id)).filter(
        (event) => event.type === 'user.status_changed',
      );
      // From ACTIVE, every announced change flips the status: the count's parity says where
      // the announcements end, whatever order the updates took.
      const { status } = await world.service.get(id);
      expect(changes.length % 2 === 1 ? 'DISABLED' : 'ACTIVE').toBe(status);
    }
  });

  it('deletes a user once when two deletions race, with one user.deleted', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await world.service.register(newUser());
      const outcomes = await Promise.allSettled([
        world.service.delete(id),
        world.service.delete(id),
      ]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect((await world.eventsOf(id)).map((event) => event.type)).toEqual([
        'user.registered',
        'user.deleted',
      ]);
    }
  });

  it('either applies an update racing a deletion before it or answers NOT_FOUND', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await world.service.register(newUser());
      const [updated] = await Promise.allSettled([
        world.service.update(id, { displayName: 'Renamed' }),
        world.service.delete(id),
      ]);
      const types = (await world.eventsOf(id)).map((event) => event.type);
      if (updated.status === 'fulfilled')
        expect(types).toEqual(['user.registered', 'user.updated', 'user.deleted']);
      else {
        expect(updated.reason).toMatchObject({ code: 'NOT_FOUND' });
        expect(types).toEqual(['user.registered', 'user.deleted']);
      }
    }
  });

  it('never caches a profile read before a disable that landed while it was read', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await world.service.register(newUser());
      const reader = gatedReader(world);
      const slowRead = reader.service.get(id);
      await reader.wasRead;
      await world.service.update(id, { status: 'DISABLED' });
      reader.release();
      expect((await slowRead).status).toBe('ACTIVE');
      // Every read after the disable, cached or not, sees it.
      expect((await world.service.get(id)).status).toBe('DISABLED');
      expect((await reader.service.getMany([id])).map((user) => user.status)).toEqual(['DISABLED']);
    }
  });

  it('keeps a read that raced a disable out of the cache even when the forget after the commit was lost', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await world.service.register(newUser());
      // The disable waits between its last statement and its commit; its forget after the
      // commit is lost (as when Redis answers nothing at that moment).
      const changed = latch();
      const committing = latch();
      const disabler = createUserService({
        users: {
          ...world.users,
          transaction: (work) =>
            world.users.transaction(async (tx) => {
              const done = await work(tx);
              changed.open();
              await committing.opened;
              return done;
            }),
        },
        cache: { ...world.cache, forget: async () => undefined },
        relay: { kick: () => undefined },
      });
      const reader = gatedReader(world);

      const disabling = disabler.update(id, { status: 'DISABLED' });
      await changed.opened;
      // Reads the row before the commit: still active.
      const slowRead = reader.service.get(id);
      await reader.wasRead;
      committing.open();
      await disabling;
      reader.release();
      expect((await slowRead).status).toBe('ACTIVE');
      expect((await world.service.get(id)).status).toBe('DISABLED');
      expect((await world.service.get(id)).status).toBe('DISABLED');
    }
  });

  it('shows a disable to every read after it, however many reads raced it', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await world.service.register(newUser());
      await Promise.all([
        ...Array.from({ length: 4 }, () => world.service.get(id)),
        world.service.update(id, { status: 'DISABLED' }),
        ...Array.from({ length: 4 }, () => world.service.getMany([id])),
      ]);
      expect((await world.service.get(id)).status).toBe('DISABLED');
    }
  });

  it('shows a cached profile as it is now after a change, and not at all after a deletion', async () => {
    const { id } = await world.service.register(newUser({ displayName: 'Ada' }));
    const cached = await world.service.get(id);
    expect(await world.service.getMany([id])).toEqual([cached]);
    await world.service.update(id, { displayName: 'Ada L.' });
    expect(await world.service.get(id)).toMatchObject({ displayName: 'Ada L.' });
    await world.service.delete(id);
    await expect(world.service.get(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await world.service.getMany([id])).toEqual([]);
  });
});

describe('UserService while Redis is unreachable', () => {
  const world = useUserWorld();

  it('fails a change whole instead of committing it and leaving the old profile cached', async () => {
    const run = await createTestRun();
    const redisUrl = new URL(run.redisUrl);
    const proxy = await createTcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port) });
    redisUrl.port = String(proxy.port);
    const logger = createLogger({ name: 'user-test', level: 'silent' });
    const redis = await createRedis({
      url: redisUrl.toString(),
      keyPrefix: run.redisKeyPrefix,
      logger,
    });
    try {
      const service = createUserService({
        users: world.users,
        cache: createUserCache(redis, logger),
        relay: { kick: () => undefined },
      });
      const { id } = await service.register(newUser({ displayName: 'Before' }));
      expect((await service.get(id)).displayName).toBe('Before'); // now cached

      proxy.cut();
      const failed = await service.update(id, { displayName: 'During' }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(toAppError(failed).code).toBe('SERVICE_UNAVAILABLE');
      expect((await world.users.findByIds([id]))[0]?.displayName).toBe('Before');

      proxy.restore();
      await eventually(async () => {
        expect((await service.get(id)).displayName).toBe('Before');
      });
      await service.update(id, { displayName: 'After' });
      expect((await service.get(id)).displayName).toBe('After');
    } finally {
      redis.disconnect();
      await proxy.close();
      await run.close();
    }
  });
});
