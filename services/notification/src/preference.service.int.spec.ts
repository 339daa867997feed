import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_STORED_PREFERENCES } from './preference.service';
import { useNotificationWorld } from './testing/notification.world';

const RACES = 10;

describe('PreferenceService on PostgreSQL', () => {
  const world = useNotificationWorld();

  const welcome = async (userId: string) =>
    (await world.preferences.get(userId)).find((preference) => preference.type === 'welcome');

  it('applies both of two changes of one preference made at once', async () => {
    for (let race = 0; race < RACES; race++) {
      const userId = randomUUID();
      await Promise.all([
        world.preferences.update(userId, [{ type: 'welcome', email: true }]),
        world.preferences.update(userId, [{ type: 'welcome', inApp: false }]),
      ]);
      expect(await welcome(userId)).toEqual({ type: 'welcome', inApp: false, email: true });
    }
  });

  it('never stores more than the cap of types, even for changes made at once', async () => {
    const types = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, n) => ({ type: `${prefix}${n}`, email: true }));
    for (let race = 0; race < RACES; race++) {
      const userId = randomUUID();
      await world.preferences.update(userId, types('a', 40));
      await world.preferences.update(userId, types('b', 40));
      // 80 stored: either change alone fits, both together would not.
      const outcomes = await Promise.allSettled([
        world.preferences.update(userId, types('c', 15)),
        world.preferences.update(userId, types('d', 15)),
      ]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(outcomes.find((outcome) => outcome.status === 'rejected')?.reason).toMatchObject({
        code: 'BAD_USER_INPUT',
        message: /^input: at most 100 /,
      });
      expect(await world.db.notificationPreference.count({ where: { userId } })).toBe(95);

      // Up to the cap exactly, all at once: 5 calls of one new type each fit, the rest do not.
      const single = await Promise.allSettled(
        Array.from({ length: 8 }, (_, n) => world.preferences.update(userId, types(`e${n}x`, 1))),
      );
      expect(single.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(5);
      expect(await world.db.notificationPreference.count({ where: { userId } })).toBe(
        MAX_STORED_PREFERENCES,
      );
    }
  });
});
