import { describe, expect, it } from 'vitest';
import { createAuditRepository } from './audit.repository';
import { useTestDatabase } from './testing/permission.database';
import { newAuditEntry, newUserId } from './testing/permission.factories';

describe('AuditRepository', () => {
  const database = useTestDatabase();
  const audit = () => createAuditRepository(database.db);

  describe('append', () => {
    it('records the actor (or the platform), action, target and details', async () => {
      const actorId = newUserId();
      const details = { before: null, after: { role: { name: 'viewer' }, scope: 'tenant:x' } };
      await audit().append({ actorId, action: 'role.assigned', target: 'user:1', details });
      await audit().append({
        actorId: null,
        action: 'role.unassigned',
        target: 'user:1',
        details: { reason: 'user deleted' },
      });
      const [platform, user] = await audit().list(2, null);
      expect(user).toMatchObject({ actorId, action: 'role.assigned', target: 'user:1', details });
      expect(platform).toMatchObject({ actorId: null, details: { reason: 'user deleted' } });
      expect(user!.seq < platform!.seq).toBe(true);
      expect(user!.createdAt).toBeInstanceOf(Date);
    });
  });

  describe('list', () => {
    it('pages newest first: a page continues below the previous page’s last entry', async () => {
      const written: bigint[] = [];
      for (let index = 0; index < 5; index++) written.push((await newAuditEntry(database.db)).seq);
      const newest = written.toReversed();
      const first = await audit().list(2, null);
      expect(first.map((row) => row.seq)).toEqual(newest.slice(0, 2));
      const second = await audit().list(2, first.at(-1)!.seq);
      expect(second.map((row) => row.seq)).toEqual(newest.slice(2, 4));
      expect((await audit().list(100, newest[4]!)).every((row) => row.seq < newest[4]!)).toBe(true);
      expect(await audit().list(5, 1n)).toEqual([]);
    });

    it('gives entries appended at once from many transactions places of their own: paging misses and repeats none', async () => {
      const below = (await newAuditEntry(database.db)).seq + 1n;
      const target = `race:${newUserId()}`;
      await Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          database.db.$transaction(async (tx) => {
            for (let entry = 0; entry < 3; entry++)
              await createAuditRepository(tx).append({
                actorId: null,
                action: `a${index}`,
                target,
                details: {},
              });
          }),
        ),
      );
      const seen: string[] = [];
      let after: bigint | null = null;
      for (;;) {
        const page = await audit().list(5, after);
        seen.push(...page.filter((row) => row.target === target).map((row) => row.id));
        if (page.length < 5 || page.at(-1)!.seq < below) break;
        after = page.at(-1)!.seq;
      }
      expect(seen).toHaveLength(24);
      expect(new Set(seen).size).toBe(24);
    });
  });
});
