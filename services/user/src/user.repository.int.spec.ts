import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { eventually, latch } from '@platform/testing';
import { newUser } from './testing/user.factories';
import { useUserWorld } from './testing/user.world';

const RACES = 10;

describe('UserRepository', () => {
  const world = useUserWorld();

  const insert = (user = newUser()) => world.users.transaction((tx) => tx.insert(user));

  describe('insert', () => {
    it('stores a new user, active and unverified', async () => {
      const user = await insert(newUser({ email: 'ada@example.com', displayName: 'Ada' }));
      expect(user).toMatchObject({
        email: 'ada@example.com',
        displayName: 'Ada',
        status: 'ACTIVE',
        emailVerified: false,
      });
      expect(await world.users.findByEmail('ada@example.com')).toEqual(user);
    });

    it('refuses a taken email with CONFLICT, also when two inserts race for it', async () => {
      for (let race = 0; race < RACES; race++) {
        const email = newUser().email;
        const outcomes = await Promise.allSettled([
          insert(newUser({ email })),
          insert(newUser({ email })),
        ]);
        expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
        const refused = outcomes.find((outcome) => outcome.status === 'rejected');
        expect(refused?.reason).toMatchObject({ code: 'CONFLICT' });
        expect(await world.db.user.count({ where: { email } })).toBe(1);
      }
    });
  });

  describe('findByIds', () => {
    it('finds the users that exist among the ids', async () => {
      const [ada, bob] = [await insert(), await insert()];
      const found = await world.users.findByIds([bob.id, randomUUID(), ada.id]);
      expect(found.map((user) => user.id).sort()).toEqual([ada.id, bob.id].sort());
      expect(await world.users.findByIds([])).toEqual([]);
    });
  });

  describe('list', () => {
    it('pages oldest first through users created at one instant, skipping and repeating none', async () => {
      const prefix = `tie${randomUUID().slice(0, 6)}`;
      const created = [];
      for (let n = 0; n < 7; n++)
        created.push(await insert(newUser({ email: `${prefix}-${n}@example.com` })));
      await world.db.user.updateMany({
        where: { id: { in: created.map((user) => user.id) } },
        data: { createdAt: new Date('2020-01-01T00:00:00.000Z') },
      });
      const expected = created.map((user) => user.id).sort();

      const seen: string[] = [];
      let after: { createdAt: Date; id: string } | undefined;
      for (;;) {
        const page = await world.users.list({ first: 3, after, search: prefix });
        expect(page.totalCount).toBe(7);
        seen.push(...page.rows.map((user) => user.id));
        after = page.rows.at(-1);
        if (!page.hasNextPage) break;
      }
      expect(seen).toEqual(expected);
    });

    it('finds users by the start of their email or display name, in any case', async () => {
      const tag = `Srch${randomUUID().slice(0, 6)}`;
      const byEmail = await insert(newUser({ email: `${tag.toLowerCase()}@example.com` }));
      const byName = await insert(newUser({ displayName: `${tag} Lovelace` }));
      await insert(newUser({ displayName: `Not ${tag}` }));
      const page = await world.users.list({ first: 10, search: tag.toUpperCase() });
      expect(page.rows.map((user) => user.id)).toEqual([byEmail.id, byName.id]);
      expect(page).toMatchObject({ hasNextPage: false, totalCount: 2 });
    });
  });

  describe('list with LIKE metacharacters', () => {
    it('matches `%`, `_` and `\\` in a search literally', async () => {
      const tag = randomUUID().slice(0, 6);
      const percent = await insert(newUser({ displayName: `%${tag} off` }));
      const underscore = await insert(newUser({ displayName: `_${tag} line` }));
      const backslash = await insert(newUser({ displayName: `\\${tag} slash` }));
      const both = await insert(newUser({ displayName: `5${tag}%_x` }));
      // What an unescaped pattern would also match.
      await insert(newUser({ displayName: `x${tag} off` }));
      await insert(newUser({ displayName: `5${tag}ab x` }));
      await insert(newUser({ displayName: `5${tag}%ax` }));

      const ids = async (search: string) =>
        (await world.users.list({ first: 100, search })).rows.map((user) => user.id);
      expect(await ids('%')).toEqual([percent.id]);
      expect(await ids('_')).toEqual([underscore.id]);
      expect(await ids('\\')).toEqual([backslash.id]);
      expect(await ids(`5${tag}%_`)).toEqual([both.id]);
      expect(await ids(`%${tag.toUpperCase()}`)).toEqual([percent.id]);
    });
  });

  describe('transaction', () => {
    it('changes only what is given', async () => {
      const { id } = await insert(newUser({ displayName: 'Ada' }));
      const after = await world.users.transaction((tx) =>
        tx.update(id, { status: 'DISABLED', displayName: undefined }),
      );
      expect(after).toMatchObject({ displayName: 'Ada', status: 'DISABLED', emailVerified: false });
    });

    it('deletes a user once when two deletions race', async () => {
      for (let race = 0; race < RACES; race++) {
        const { id } = await insert();
        const deleted = await Promise.all(
          [1, 2].map(() => world.users.transaction((tx) => tx.delete(id))),
        );
        expect(deleted.sort()).toEqual([false, true]);
      }
    });

    it('makes a second lock of one user wait until the first transaction ends', async () => {
      const { id } = await insert(newUser({ displayName: 'Ada' }));
      const held = latch();
      const locked = latch();
      const first = world.users.transaction(async (tx) => {
        await tx.lock(id);
        locked.open();
        await held.opened;
        await tx.update(id, { displayName: 'First' });
      });
      await locked.opened;
      const second = world.users.transaction((tx) => tx.lock(id));
      // The second waits on the row lock (as PostgreSQL reports it), not on a timer.
      await eventually(async () => {
        const [waiting] = await world.db.$queryRaw<{ count: bigint }[]>`
          SELECT count(*) AS count FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'`;
        expect(waiting?.count).toBe(1n);
      });
      held.open();
      await first;
      expect(await second).toMatchObject({ displayName: 'First' });
      expect(await world.users.transaction((tx) => tx.lock(randomUUID()))).toBeNull();
    });

    it('writes an event to the outbox if and only if the transaction commits', async () => {
      const kept = createEvent('user.deleted', { userId: randomUUID() });
      const dropped = createEvent('user.deleted', { userId: randomUUID() });
      await world.users.transaction((tx) => tx.enqueue(kept));
      await expect(
        world.users.transaction(async (tx) => {
          await tx.enqueue(dropped);
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      const rows = await world.db.userOutboxEvent.findMany({
        where: { id: { in: [kept.id, dropped.id] } },
      });
      expect(rows.map((row) => row.envelope)).toEqual([JSON.parse(JSON.stringify(kept))]);
    });
  });
});
