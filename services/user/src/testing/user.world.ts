// Test-only: a test file's own database (created and migrated before its tests, dropped after
// them) and Redis key space, with the user repository, profile cache and use cases on them.
import { beforeAll } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { parseEvent, type EventEnvelope } from '@platform/events';
import { createLogger } from '@platform/logger';
import { createRedis } from '@platform/redis';
import { createTestRun } from '@platform/testing';
import { createUserRepository, type UserRepository } from '../user.repository';
import { createUserService, type UserService } from '../user.service';
import { createUserCache, type UserCache } from '../user.cache';

export interface UserWorld {
  readonly db: Database;
  readonly users: UserRepository;
  /** The profile cache `service` uses. */
  readonly cache: UserCache;
  readonly service: UserService;
  /** The user's events in the outbox, oldest first, as consumers read them. */
  eventsOf(userId: string): Promise<EventEnvelope[]>;
}

/** The world of the file's tests; its fields are there once the tests run. */
export function useUserWorld(): UserWorld {
  const world = {} as { -readonly [K in keyof UserWorld]: UserWorld[K] };
  beforeAll(async () => {
    const run = await createTestRun();
    const logger = createLogger({ name: 'user-test', level: 'silent' });
    const [db, redis] = await Promise.all([
      connectDatabase({ databaseUrl: run.databaseUrl }),
      createRedis({ url: run.redisUrl, keyPrefix: run.redisKeyPrefix, logger }),
    ]);
    const users = createUserRepository(db);
    const cache = createUserCache(redis, logger);
    Object.assign(world, {
      db,
      users,
      cache,
      service: createUserService({ users, cache, relay: { kick: () => undefined } }),
      async eventsOf(userId) {
        const rows = await db.userOutboxEvent.findMany({ orderBy: { seq: 'asc' } });
        return rows
          .map((row) => parseEvent(row.envelope))
          .filter((event) => 'userId' in event.payload && event.payload.userId === userId);
      },
    } satisfies UserWorld);
    return async () => {
      redis.disconnect();
      await db.$disconnect();
      await run.close();
    };
  });
  return world;
}
