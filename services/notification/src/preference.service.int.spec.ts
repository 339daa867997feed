import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
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
});
