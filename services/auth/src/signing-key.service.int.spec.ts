import { beforeEach, describe, expect, it } from 'vitest';
import { createTestClock } from './testing/auth.fakes';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';

const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

describe('SigningKeyService against PostgreSQL', () => {
  const world = useAuthTestWorld();
  const clock = createTestClock();
  /** One auth-service instance starting. */
  const instance = () => wireOverWorld(world, { clock }).signingKeys;
  const startAtOnce = (instances: number) =>
    Promise.all(Array.from({ length: instances }, () => instance().ensureActiveKey(MAX_AGE_MS)));

  beforeEach(async () => {
    await world.db.signingKey.deleteMany();
  });

  it('creates one key when several instances start at once on an empty table, every time', async () => {
    for (let round = 0; round < 5; round++) {
      await world.db.signingKey.deleteMany();
      const keys = await startAtOnce(4);
      expect(new Set(keys.map((key) => key.kid)).size).toBe(1);
      expect(await world.db.signingKey.count()).toBe(1);
    }
  });

  it('replaces a key past its age once when several instances start at once', async () => {
    const [old] = await startAtOnce(1);
    clock.advance(MAX_AGE_MS / 1000);
    const keys = await startAtOnce(4);
    const kids = new Set(keys.map((key) => key.kid));
    expect(kids.size).toBe(1);
    expect(kids.has(old!.kid)).toBe(false);
    const rows = await world.db.signingKey.findMany({ orderBy: { createdAt: 'asc' } });
    expect(rows.map((row) => [row.kid, row.retiredAt])).toEqual([
      [old!.kid, clock.now()],
      [keys[0]!.kid, null],
    ]);
    expect((await instance().publishedKeys()).map((jwk) => jwk.kid)).toEqual([
      keys[0]!.kid,
      old!.kid,
    ]);
  });
});
