import { beforeEach, describe, expect, it } from 'vitest';
import { PLATFORM } from './actor.policy';
import {
  answersOf,
  codesOf,
  concurrently,
  holdLock,
  twiceAtOnce,
  untilWaitingForLocks,
} from './testing/permission.database';
import { newRole, newUserId } from './testing/permission.factories';
import { useTestServices } from './testing/permission.services';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('AssignmentService', () => {
  const services = useTestServices();
  const db = () => services.database.db;

  /** A user the user service knows, active unless told otherwise. */
  function newUser(status: 'active' | 'disabled' = 'active'): string {
    const id = newUserId();
    services.users.set(id, status);
    return id;
  }

  const adminRoleId = async () =>
    (await db().role.findUniqueOrThrow({ where: { name: 'admin' } })).id;
  const auditOf = (userId: string) =>
    db().auditEntry.findMany({ where: { target: `user:${userId}` }, orderBy: { seq: 'asc' } });
  const eventsOf = async (userId: string) =>
    (await db().rbacOutboxEvent.findMany()).filter(
      (row) => (row.envelope as { payload: { userId?: string } }).payload.userId === userId,
    );

  describe('assign', () => {
    it('assigns once when two assignments of the same role arrive at once: one audit entry, one event', async () => {
      const role = await newRole(db(), { permissions: ['users:read'] });
      for (let round = 0; round < 10; round++) {
        const user = newUser();
        const assign = () =>
          services.assignments.assign(PLATFORM, user, { id: role.id }, 'tenant:a');
        expect(await twiceAtOnce(assign)).toEqual([false, true]);
        expect((await auditOf(user)).map((entry) => entry.action)).toEqual(['role.assigned']);
        expect((await eventsOf(user)).map((row) => row.type)).toEqual(['rbac.role_assigned']);
      }
    });

    it('makes many assignments by an admin at once, more than the database pool has connections', async () => {
      const role = await newRole(db(), { permissions: ['users:read'] });
      const actor = newUser();
      await services.assignments.assign(PLATFORM, actor, { id: await adminRoleId() }, '');
      // Each checks the actor and the target inside its transaction, reading through the pool.
      const users = Array.from({ length: 16 }, () => newUser());
      const answers = await Promise.all(
        users.map((user) => services.assignments.assign({ id: actor }, user, { id: role.id }, '')),
      );
      expect(answers).toEqual(users.map(() => true));
    });

    it('lets the very next check see the new role, by id or by name', async () => {
      const role = await newRole(db(), { permissions: ['audit:read'] });
      const user = newUser();
      expect(await services.checks.isAllowed(user, '', 'audit:read')).toBe(false);
      expect(await services.assignments.assign(PLATFORM, user, { name: role.name }, '')).toBe(true);
      expect(await services.checks.isAllowed(user, '', 'audit:read')).toBe(true);
      expect(await services.checks.isAllowed(user, 'tenant:z', 'audit:read')).toBe(true);
    });

    it('refuses a user the user service does not know, and a role that does not exist, writing nothing', async () => {
      const role = await newRole(db());
      const stranger = newUserId();
      await expect(
        services.assignments.assign(PLATFORM, stranger, { id: role.id }, ''),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      const user = newUser();
      await expect(
        services.assignments.assign(PLATFORM, user, { id: newUserId() }, ''),
      ).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'Role not found' });
      expect(await db().roleAssignment.count({ where: { userId: { in: [stranger, user] } } })).toBe(
        0,
      );
      expect(await auditOf(user)).toEqual([]);
    });

    it('answers NOT_FOUND to an assignment of a role whose deletion is under way, writing nothing', async () => {
      const role = await newRole(db(), { permissions: ['audit:read'] });
      const user = newUser();
      // The deletion has removed the role's row but not committed (held up writing its audit
      // entry) when the assignment, which still sees the role, comes to write.
      const audit = await holdLock(db(), (tx) =>
        tx.$executeRawUnsafe('LOCK TABLE "rbac"."audit_log" IN EXCLUSIVE MODE'),
      );
      const deletion = concurrently([() => services.roles.deleteRole(PLATFORM, role.id)]);
      await untilWaitingForLocks(db(), 1);
      const assignment = concurrently([
        () => services.assignments.assign(PLATFORM, user, { id: role.id }, ''),
      ]);
      await untilWaitingForLocks(db(), 2);
      await audit.release();

      expect(await deletion).toEqual([{ value: undefined }]);
      expect(await assignment).toEqual([{ code: 'NOT_FOUND', message: 'Role not found' }]);
      expect(await db().roleAssignment.count({ where: { userId: user } })).toBe(0);
      expect(await auditOf(user)).toEqual([]);
      expect(await eventsOf(user)).toEqual([]);
    });

    it('counts an assignment still being made when the role’s deletion begins in the deletion’s audit entry', async () => {
      const role = await newRole(db(), { permissions: ['audit:read'] });
      const user = newUser();
      // The assignment holds the role and has written its row, but not committed (held up
      // writing its audit entry), when the deletion begins.
      const audit = await holdLock(db(), (tx) =>
        tx.$executeRawUnsafe('LOCK TABLE "rbac"."audit_log" IN EXCLUSIVE MODE'),
      );
      const assignment = concurrently([
        () => services.assignments.assign(PLATFORM, user, { id: role.id }, ''),
      ]);
      await untilWaitingForLocks(db(), 1);
      const deletion = concurrently([() => services.roles.deleteRole(PLATFORM, role.id)]);
      await untilWaitingForLocks(db(), 2);
      await audit.release();

      expect(await assignment).toEqual([{ value: true }]);
      expect(await deletion).toEqual([{ value: undefined }]);
      expect(await db().roleAssignment.count({ where: { roleId: role.id } })).toBe(0);
      const [deleted] = await db().auditEntry.findMany({
        where: { target: `role:${role.id}`, action: 'role.deleted' },
      });
      expect(deleted?.details).toMatchObject({ before: { assignments: 1 } });
    });

    it('lets an assignment racing the role’s deletion come first or find the role gone, never fail otherwise, and leaves no assignment of the deleted role', async () => {
      for (let round = 0; round < 10; round++) {
        const role = await newRole(db(), { permissions: ['audit:read'] });
        const user = newUser();
        // The rounds start one or the other a few milliseconds late, so that between them they
        // land the deletion before, during and after the assignment's transaction.
        const [assignLate, deleteLate] = round % 2 ? [round, 0] : [0, round];
        const [assigned, deleted] = await concurrently<unknown>([
          async () => {
            await sleep(assignLate);
            return services.assignments.assign(PLATFORM, user, { id: role.id }, '');
          },
          async () => {
            await sleep(deleteLate);
            await services.roles.deleteRole(PLATFORM, role.id);
          },
        ]);
        expect(deleted).toEqual({ value: undefined });
        const lost = assigned !== undefined && 'code' in assigned;
        // Came first (and went with the role), or found it gone: as for a role that never was.
        expect(assigned).toEqual(
          lost ? { code: 'NOT_FOUND', message: 'Role not found' } : { value: true },
        );
        expect(await db().roleAssignment.count({ where: { roleId: role.id } })).toBe(0);
        expect(await services.checks.isAllowed(user, '', 'audit:read')).toBe(false);
        // A lost assignment wrote nothing; a won one is audited and announced once.
        expect((await auditOf(user)).map((entry) => entry.action)).toEqual(
          lost ? [] : ['role.assigned'],
        );
        expect((await eventsOf(user)).map((row) => row.type)).toEqual(
          lost ? [] : ['rbac.role_assigned'],
        );
        // The deletion's audit entry counts the assignments that went with the role.
        const [deletion] = await db().auditEntry.findMany({
          where: { target: `role:${role.id}`, action: 'role.deleted' },
        });
        expect(deletion?.details).toMatchObject({ before: { assignments: lost ? 0 : 1 } });
      }
    });
  });

  describe('unassign', () => {
    beforeEach(async () => {
      await db().roleAssignment.deleteMany({ where: { role: { name: 'admin' } } });
    });

    it('keeps one of the last two global admins when both step down at once', async () => {
      const admin = await adminRoleId();
      for (let round = 0; round < 10; round++) {
        const [first, second] = [newUser(), newUser()];
        await services.assignments.assign(PLATFORM, first, { id: admin }, '');
        await services.assignments.assign(PLATFORM, second, { id: admin }, '');
        const outcomes = await concurrently([
          () => services.assignments.unassign(PLATFORM, first, admin, ''),
          () => services.assignments.unassign(PLATFORM, second, admin, ''),
        ]);
        expect(codesOf(outcomes)).toEqual(['BAD_USER_INPUT', 'ok']);
        expect(outcomes).toContainEqual(
          expect.objectContaining({ message: 'userId: is the last active global admin' }),
        );
        expect(await db().roleAssignment.count({ where: { roleId: admin, scope: '' } })).toBe(1);
        await db().roleAssignment.deleteMany({ where: { roleId: admin } });
      }
    });

    it('lets an admin step down only while another active admin remains', async () => {
      const admin = await adminRoleId();
      const [stays, disabled] = [newUser(), newUser('disabled')];
      await services.assignments.assign(PLATFORM, stays, { id: admin }, '');
      await services.assignments.assign(PLATFORM, disabled, { id: admin }, '');
      await services.assignments.assign(PLATFORM, stays, { id: admin }, 'tenant:a');

      await expect(services.assignments.unassign(PLATFORM, stays, admin, '')).rejects.toMatchObject(
        {
          code: 'BAD_USER_INPUT',
        },
      );
      // Admin in a scope, and admins that are not the last, are not protected.
      expect(await services.assignments.unassign(PLATFORM, stays, admin, 'tenant:a')).toBe(true);
      expect(await services.assignments.unassign(PLATFORM, disabled, admin, '')).toBe(true);

      const next = newUser();
      await services.assignments.assign(PLATFORM, next, { id: admin }, '');
      expect(await services.assignments.unassign(PLATFORM, stays, admin, '')).toBe(true);
      expect(await services.checks.isAllowed(stays, '', 'users:delete')).toBe(false);
      expect(await services.assignments.unassign(PLATFORM, stays, admin, '')).toBe(false);
    });

    it('lets the very next check miss the role, and audits and announces the change once', async () => {
      const role = await newRole(db(), { permissions: ['audit:read'] });
      const user = newUser();
      await services.assignments.assign(PLATFORM, user, { id: role.id }, 'tenant:a');
      expect(await services.checks.isAllowed(user, 'tenant:a', 'audit:read')).toBe(true);
      const unassign = () => services.assignments.unassign(PLATFORM, user, role.id, 'tenant:a');
      expect(codesOf(await concurrently([unassign, unassign]))).toEqual(['ok', 'ok']);
      expect(await services.checks.isAllowed(user, 'tenant:a', 'audit:read')).toBe(false);
      expect((await auditOf(user)).map((entry) => entry.action)).toEqual([
        'role.assigned',
        'role.unassigned',
      ]);
      expect((await eventsOf(user)).map((row) => row.type).sort()).toEqual([
        'rbac.role_assigned',
        'rbac.role_unassigned',
      ]);
    });
  });

  describe('listAssignments', () => {
    it('lists each user’s assignments with their roles, and nothing for a user without any', async () => {
      const parent = await newRole(db(), { permissions: ['users:read'] });
      const role = await newRole(db(), { permissions: ['audit:read'], inherits: [parent.id] });
      const [user, nobody] = [newUser(), newUserId()];
      await services.assignments.assign(PLATFORM, user, { id: role.id }, 'tenant:a');
      const byUser = await services.assignments.listAssignments([user, nobody]);
      expect(byUser.get(nobody)).toEqual([]);
      expect(byUser.get(user)).toEqual([
        {
          role: expect.objectContaining({
            id: role.id,
            effectivePermissions: ['audit:read', 'users:read'],
          }) as unknown,
          scope: 'tenant:a',
          assignedAt: expect.any(Date) as unknown,
          mfa: { mfaPending: false, graceEndsAt: null, withheld: [] },
        },
      ]);
    });
  });

  describe('removeDeletedUser', () => {
    it('removes a deleted user’s assignments once, however often and however concurrently the event arrives', async () => {
      const [global, scoped] = [await newRole(db()), await newRole(db())];
      const user = newUser();
      await services.assignments.assign(PLATFORM, user, { id: global.id }, '');
      await services.assignments.assign(PLATFORM, user, { id: scoped.id }, 'tenant:a');
      const eventId = newUserId();
      const remove = () =>
        services.assignments.removeDeletedUser(user, 'test.user-deleted', eventId);

      expect(answersOf(await concurrently([remove, remove, remove]))).toEqual([false, false, true]);
      expect(await remove()).toBe(false);
      expect((await services.assignments.listAssignments([user])).get(user)).toEqual([]);
      const removals = (await auditOf(user)).filter((entry) => entry.action === 'role.unassigned');
      expect(removals.map((entry) => [entry.actorId, entry.details])).toEqual(
        expect.arrayContaining([
          [
            null,
            {
              reason: 'user deleted',
              before: { role: { id: global.id, name: global.name }, scope: null },
              after: null,
            },
          ],
          [
            null,
            {
              reason: 'user deleted',
              before: { role: { id: scoped.id, name: scoped.name }, scope: 'tenant:a' },
              after: null,
            },
          ],
        ]),
      );
      expect(removals).toHaveLength(2);
    });
  });
});
