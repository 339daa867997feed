import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { parseEvent } from '@platform/events';
import { createTestRun, type TestRun } from '@platform/testing';
import { createUserRepository } from './user.repository';
import { createUserService, type UserService } from './user.service';
import { createFakeUserCache } from './testing/user.fakes';
import { newUser } from './testing/user.factories';

const RACES = 10;

/** The use cases that own a transaction, raced on the real PostgreSQL. */
describe('UserService on PostgreSQL', () => {
  let run: TestRun;
  let db: Database;
  let users: UserService;

  beforeAll(async () => {
    run = await createTestRun();
    db = await connectDatabase({ databaseUrl: run.databaseUrl });
    users = createUserService({
      users: createUserRepository(db),
      cache: createFakeUserCache(),
      relay: { kick: () => undefined },
    });
  });

  afterAll(async () => {
    await db.$disconnect();
    await run.close();
  });

  /** The user's events in the outbox, as consumers read them. */
  const eventsOf = async (userId: string) =>
    (await db.userOutboxEvent.findMany({ orderBy: { createdAt: 'asc' } }))
      .map((row) => parseEvent(row.envelope))
      .filter((event) => 'userId' in event.payload && event.payload.userId === userId);

  it('registers one of two users racing for one email, announces that one, refuses the other', async () => {
    for (let race = 0; race < RACES; race++) {
      const { email } = newUser();
      const outcomes = await Promise.allSettled([
        users.register(newUser({ email })),
        users.register(newUser({ email: email.toUpperCase() })),
      ]);
      const registered = outcomes.flatMap((outcome) =>
        outcome.status === 'fulfilled' ? [outcome.value] : [],
      );
      expect(registered).toHaveLength(1);
      expect(outcomes.find((outcome) => outcome.status === 'rejected')?.reason).toMatchObject({
        code: 'CONFLICT',
      });
      expect((await eventsOf(registered[0]!.id)).map((event) => event.type)).toEqual([
        'user.registered',
      ]);
      expect(await db.userOutboxEvent.count({ where: { type: 'user.registered' } })).toBe(race + 1);
    }
  });

  it('announces each status change of racing updates, so the events end where the user does', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await users.register(newUser());
      await Promise.all([
        users.update(id, { status: 'DISABLED' }),
        users.update(id, { status: 'ACTIVE' }),
        users.update(id, { status: 'DISABLED' }),
      ]);
      const changes = (await eventsOf(id)).filter((event) => event.type === 'user.status_changed');
      // From ACTIVE, every announced change flips the status: the count's parity says where
      // the announcements end, whatever order the updates took.
      const { status } = await users.get(id);
      expect(changes.length % 2 === 1 ? 'DISABLED' : 'ACTIVE').toBe(status);
    }
  });

  it('deletes a user once when two deletions race, with one user.deleted', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await users.register(newUser());
      const outcomes = await Promise.allSettled([users.delete(id), users.delete(id)]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect((await eventsOf(id)).map((event) => event.type)).toEqual([
        'user.registered',
        'user.deleted',
      ]);
    }
  });

  it('either applies an update racing a deletion before it or answers NOT_FOUND', async () => {
    for (let race = 0; race < RACES; race++) {
      const { id } = await users.register(newUser());
      const [updated] = await Promise.allSettled([
        users.update(id, { displayName: 'Renamed' }),
        users.delete(id),
      ]);
      const types = (await eventsOf(id)).map((event) => event.type);
      if (updated.status === 'fulfilled')
        expect(types).toEqual(['user.registered', 'user.updated', 'user.deleted']);
      else {
        expect(updated.reason).toMatchObject({ code: 'NOT_FOUND' });
        expect(types).toEqual(['user.registered', 'user.deleted']);
      }
    }
  });
});
