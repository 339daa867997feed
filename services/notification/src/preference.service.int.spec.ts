import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { createTestRun, type TestRun } from '@platform/testing';
import { createNotificationRepository } from './notification.repository';
import { createPreferenceService, type PreferenceService } from './preference.service';

const RACES = 10;

describe('PreferenceService on PostgreSQL', () => {
  let run: TestRun;
  let db: Database;
  let preferences: PreferenceService;

  beforeAll(async () => {
    run = await createTestRun();
    db = await connectDatabase({ databaseUrl: run.databaseUrl });
    preferences = createPreferenceService({ notifications: createNotificationRepository(db) });
  });

  afterAll(async () => {
    await db.$disconnect();
    await run.close();
  });

  const welcome = async (userId: string) =>
    (await preferences.get(userId)).find((preference) => preference.type === 'welcome');

  it('applies both of two changes of one preference made at once', async () => {
    for (let race = 0; race < RACES; race++) {
      const userId = randomUUID();
      await Promise.all([
        preferences.update(userId, [{ type: 'welcome', email: true }]),
        preferences.update(userId, [{ type: 'welcome', inApp: false }]),
      ]);
      expect(await welcome(userId)).toEqual({ type: 'welcome', inApp: false, email: true });
    }
  });
});
