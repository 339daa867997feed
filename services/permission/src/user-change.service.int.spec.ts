import { setImmediate as nextTurn } from 'node:timers/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { PLATFORM, type Actor } from './actor.policy';
import { codesOf, concurrently } from './testing/permission.database';
import { newAssignment, newUserId } from './testing/permission.factories';
import { useTestServices } from './testing/permission.services';
import type { UserChange } from './user-change.service';

const ROUNDS = 10;

describe('UserChangeService', () => {
  const services = useTestServices();
  const db = () => services.database.db;
  let adminId: string;

  beforeEach(async () => {
    adminId = (await db().role.findUniqueOrThrow({ where: { name: 'admin' } })).id;
    // Each test starts with no admin at all, then makes the ones it needs.
    await db().roleAssignment.deleteMany({ where: { roleId: adminId } });
  });

  async function newAdmin(): Promise<string> {
    const id = newUserId();
    services.users.set(id, 'active');
    await newAssignment(db(), { roleId: adminId, userId: id });
    return id;
  }

  /** Users holding admin globally whom the user service knows as active. */
  async function activeAdmins(): Promise<string[]> {
    const rows = await db().roleAssignment.findMany({ where: { roleId: adminId, scope: '' } });
    return rows.map((row) => row.userId).filter((id) => services.users.get(id) === 'active');
  }

  /**
   * What the users subgraph does to disable or delete a user: ask, let the user service act
   * (here: the in-memory directory, after giving the other call a turn), then report.
   */
  async function remove(actor: Actor, userId: string, change: UserChange): Promise<void> {
    const token = await services.userChanges.begin(actor, userId, change);
    await nextTurn();
    if (change === 'delete') services.users.delete(userId);
    else services.users.set(userId, 'disabled');
    await services.userChanges.end(actor, userId, change, token, true);
  }

  const disable = (actor: Actor, userId: string) => () => remove(actor, userId, 'disable');
  const erase = (actor: Actor, userId: string) => () => remove(actor, userId, 'delete');
  const unassign = (actor: Actor, userId: string) => () =>
    services.assignments.unassign(actor, userId, adminId, '');
  const emptyAdminRole = (actor: Actor) => () =>
    services.roles.updateRole(actor, adminId, { permissions: [] });

  const pairs: [string, (a: string, b: string) => (() => Promise<unknown>)[]][] = [
    ['each disabling the other', (a, b) => [disable({ id: a }, b), disable({ id: b }, a)]],
    [
      'one disabled while the other is unassigned',
      (a, b) => [disable({ id: a }, b), unassign({ id: b }, a)],
    ],
    [
      'one deleted while the other is disabled',
      (a, b) => [erase({ id: a }, b), disable({ id: b }, a)],
    ],
    [
      'one deleted while the other is unassigned',
      (a, b) => [erase({ id: a }, b), unassign({ id: b }, a)],
    ],
    ['each deleting the other', (a, b) => [erase({ id: a }, b), erase({ id: b }, a)]],
    ['each unassigning the other', (a, b) => [unassign({ id: a }, b), unassign({ id: b }, a)]],
    [
      'the admin role emptied while one is disabled',
      (a, b) => [emptyAdminRole({ id: a }), disable({ id: a }, b), disable(PLATFORM, a)],
    ],
  ];

  describe.each(pairs)('with exactly two active admins, %s at once', (_, calls) => {
    it(`leaves one active global admin, every one of ${ROUNDS} rounds`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        await db().roleAssignment.deleteMany({ where: { roleId: adminId } });
        const [a, b] = [await newAdmin(), await newAdmin()];
        const outcomes = await concurrently(calls(a, b));
        expect(codesOf(outcomes)).not.toContain('INTERNAL');
        expect(await activeAdmins()).toHaveLength(1);
        // Nobody stays marked leaving once their removal has ended.
        expect(await services.leaving.among([a, b])).toEqual(new Set());
      }
    });
  });

  describe('begin', () => {
    it('counts a user being disabled as gone until the change ends', async () => {
      const [a, b] = [await newAdmin(), await newAdmin()];
      const token = await services.userChanges.begin(PLATFORM, a, 'disable');
      await expect(services.userChanges.begin(PLATFORM, b, 'disable')).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        message: 'userId: is the last active global admin',
      });
      await expect(services.assignments.unassign(PLATFORM, b, adminId, '')).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
      // The user service failed to disable a: a is an active admin again, so b may go.
      await services.userChanges.end(PLATFORM, a, 'disable', token, false);
      await expect(services.userChanges.begin(PLATFORM, b, 'disable')).resolves.toMatch(/./);
    });

    it("keeps the mark in PostgreSQL, in the decision's transaction, until the change ends", async () => {
      const [a, b] = [await newAdmin(), await newAdmin()];
      const token = await services.userChanges.begin(PLATFORM, a, 'delete');
      const marks = await db().leavingUser.findMany({ where: { userId: a } });
      expect(marks).toEqual([expect.objectContaining({ token, userId: a })]);
      // Two minutes, by the database's clock.
      const left = marks[0]!.expiresAt.getTime() - Date.now();
      expect(left).toBeGreaterThan(100_000);
      expect(left).toBeLessThanOrEqual(125_000);
      await expect(services.userChanges.begin(PLATFORM, b, 'delete')).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
      await services.userChanges.end(PLATFORM, a, 'delete', token, false);
      expect(await db().leavingUser.count({ where: { userId: a } })).toBe(0);
    });

    it('stops counting a mark left by a crash once it expires, and drops it at the next mark', async () => {
      const [a, b] = [await newAdmin(), await newAdmin()];
      // A removal of a that began and never ended; its mark is past its two minutes.
      await services.userChanges.begin(PLATFORM, a, 'disable');
      await db().leavingUser.updateMany({
        where: { userId: a },
        data: { expiresAt: new Date(Date.now() - 1_000) },
      });
      expect(await services.leaving.among([a, b])).toEqual(new Set());
      const token = await services.userChanges.begin(PLATFORM, b, 'disable');
      expect(await db().leavingUser.findMany({ where: { userId: { in: [a, b] } } })).toEqual([
        expect.objectContaining({ token, userId: b }),
      ]);
      await services.userChanges.end(PLATFORM, b, 'disable', token, false);
    });

    it('marks a user who is not an admin yet, so an admin role given meanwhile cannot keep them counted', async () => {
      const admin = await newAdmin();
      const newcomer = newUserId();
      services.users.set(newcomer, 'active');
      const token = await services.userChanges.begin(PLATFORM, newcomer, 'disable');
      await services.assignments.assign(PLATFORM, newcomer, { id: adminId }, '');
      await expect(services.userChanges.begin(PLATFORM, admin, 'delete')).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
      await services.userChanges.end(PLATFORM, newcomer, 'disable', token, false);
    });
  });

  describe('end', () => {
    it('audits a change that was made, with its actor, and not one that failed', async () => {
      const [a, b] = [await newAdmin(), await newAdmin()];
      const failed = await services.userChanges.begin({ id: a }, b, 'disable');
      await services.userChanges.end({ id: a }, b, 'disable', failed, false);
      await remove({ id: a }, b, 'delete');
      const entries = await db().auditEntry.findMany({
        where: { target: `user:${b}` },
        orderBy: { seq: 'asc' },
      });
      expect(entries.map(({ actorId, action }) => ({ actorId, action }))).toEqual([
        { actorId: a, action: 'user.deleted' },
      ]);
    });
  });
});
