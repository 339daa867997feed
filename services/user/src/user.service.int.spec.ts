import { describe, expect, it } from 'vitest';
import { newUser } from './testing/user.factories';
import { useUserWorld } from './testing/user.world';

const RACES = 10;

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
