import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createPreferenceService, type PreferenceService } from './preference.service';
import { createFakeNotificationRepository } from './testing/notification.fakes';

const user = randomUUID();

describe('PreferenceService', () => {
  let preferences: PreferenceService;

  beforeEach(() => {
    preferences = createPreferenceService({ notifications: createFakeNotificationRepository() });
  });

  describe('get', () => {
    it('lists every type the platform sends with its defaults when nothing is stored', async () => {
      expect(await preferences.get(user)).toEqual([
        { type: 'role_changed', inApp: true, email: false },
        { type: 'security', inApp: true, email: true },
        { type: 'security.mfa', inApp: true, email: true },
        { type: 'welcome', inApp: true, email: false },
      ]);
    });

    it('refuses a user id that is not an id', async () => {
      await expect(preferences.get('me')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    });
  });

  describe('update', () => {
    it('changes only the channel given and lists other types stored too', async () => {
      await preferences.update(user, [{ type: 'welcome', email: true }]);
      const after = await preferences.update(user, [
        { type: 'welcome', inApp: false },
        { type: 'invoice.paid', email: true },
      ]);
      expect(after).toEqual([
        { type: 'invoice.paid', inApp: true, email: true },
        { type: 'role_changed', inApp: true, email: false },
        { type: 'security', inApp: true, email: true },
        { type: 'security.mfa', inApp: true, email: true },
        { type: 'welcome', inApp: false, email: true },
      ]);
    });

    it('refuses to switch security notices off in-app, but lets their email go', async () => {
      await expect(
        preferences.update(user, [{ type: 'security', inApp: false }]),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: /^inApp:/ });
      const after = await preferences.update(user, [{ type: 'security', email: false }]);
      expect(after).toContainEqual({ type: 'security', inApp: true, email: false });
    });

    it('refuses to switch notices of second-factor changes off, in-app or by email', async () => {
      for (const change of [
        { type: 'security.mfa', inApp: false },
        { type: 'security.mfa', email: false },
      ])
        await expect(preferences.update(user, [change])).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
        });
      expect(await preferences.get(user)).toContainEqual({
        type: 'security.mfa',
        inApp: true,
        email: true,
      });
    });

    it('refuses more than 50 changes at once and a type that is not a slug, changing nothing', async () => {
      const many = Array.from({ length: 51 }, (_, n) => ({ type: `t${n}`, email: true }));
      await expect(preferences.update(user, many)).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        message: /^input:/,
      });
      await expect(
        preferences.update(user, [
          { type: 'welcome', email: true },
          { type: 'Bad Type', email: true },
        ]),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: /^type:/ });
      expect(await preferences.get(user)).toContainEqual({
        type: 'welcome',
        inApp: true,
        email: false,
      });
    });

    it('stores preferences for at most 100 types, still changing the stored ones', async () => {
      const types = (from: number, count: number) =>
        Array.from({ length: count }, (_, n) => ({ type: `t${from + n}`, email: true }));
      await preferences.update(user, types(0, 50));
      await preferences.update(user, [...types(50, 49), { type: 't0', email: false }]);
      await expect(preferences.update(user, types(99, 2))).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        message: 'input: at most 100 notification types with a preference (99 stored)',
      });
      expect(await preferences.get(user)).not.toContainEqual(
        expect.objectContaining({ type: 't99' }),
      );
      // The hundredth, twice in one call, is one type; then only stored types may change.
      await preferences.update(user, [...types(99, 1), ...types(99, 1)]);
      await expect(preferences.update(user, types(100, 1))).rejects.toMatchObject({
        message: /^input:/,
      });
      const after = await preferences.update(user, [{ type: 't0', email: true }, ...types(1, 1)]);
      expect(after.filter((preference) => /^t\d+$/.test(preference.type))).toHaveLength(100);
      expect(after).toContainEqual({ type: 't0', inApp: true, email: true });
    });
  });
});
