import { describe, expect, it } from 'vitest';
import { PLATFORM, type Actor } from './actor.policy';
import { createFakePermissionServices } from './testing/permission.fakes';

const [ALICE, BOB, CAROL] = [1, 2, 3].map((n) => `00000000-0000-4000-8000-00000000000${n}`) as [
  string,
  string,
  string,
];
const MISSING = '00000000-0000-4000-8000-00000000dead';

describe('AssignmentService', () => {
  /** The use cases over fakes, the built-in roles seeded and these users active. */
  async function setup(active: string[] = [ALICE, BOB, CAROL]) {
    const services = createFakePermissionServices();
    for (const id of active) services.users.users.set(id, 'active');
    await services.roles.seed();
    const roleNamed = async (name: string) =>
      (await services.roles.listRoles()).find((role) => role.name === name)!;
    const create = (name: string, permissions: string[] = []) =>
      services.roles.createRole(PLATFORM, { name, description: null, permissions, inherits: [] });
    const written = () => ({
      assignments: services.store.data.assignments.length,
      // A refusal is itself audited (access.refused); the change is not.
      audit: services.store.data.audit.filter((entry) => entry.action !== 'access.refused').length,
      outbox: services.store.data.outbox.length,
    });
    return { ...services, admin: await roleNamed('admin'), roleNamed, create, written };
  }

  describe('assign', () => {
    it('assigns by id or by name, audits, announces and forgets the user’s cached permissions', async () => {
      const { assignments, checks, store, cache, create, admin } = await setup();
      const viewer = await create('viewer', ['users:read']);
      await assignments.assign(PLATFORM, BOB, { id: admin.id }, '');
      cache.forgottenUsers.length = 0;
      expect(await checks.isAllowed(ALICE, '', 'users:read')).toBe(false);
      expect(await assignments.assign({ id: BOB }, ALICE, { id: viewer.id }, '')).toBe(true);
      expect(await checks.isAllowed(ALICE, '', 'users:read')).toBe(true);
      expect(await assignments.assign(PLATFORM, BOB, { name: 'viewer' }, 'tenant:a')).toBe(true);
      // Each change forgets inside its transaction and once committed.
      expect(cache.forgottenUsers).toEqual([ALICE, ALICE, BOB, BOB]);
      expect(
        store.data.audit.slice(-2).map((e) => [e.actorId, e.action, e.target, e.details]),
      ).toEqual([
        [
          BOB,
          'role.assigned',
          `user:${ALICE}`,
          { before: null, after: { role: { id: viewer.id, name: 'viewer' }, scope: null } },
        ],
        [
          null,
          'role.assigned',
          `user:${BOB}`,
          { before: null, after: { role: { id: viewer.id, name: 'viewer' }, scope: 'tenant:a' } },
        ],
      ]);
      expect(store.data.outbox.slice(-2).map((e) => [e.type, e.payload])).toEqual([
        [
          'rbac.role_assigned',
          { userId: ALICE, roleId: viewer.id, roleName: 'viewer', scope: null, actorId: BOB },
        ],
        [
          'rbac.role_assigned',
          { userId: BOB, roleId: viewer.id, roleName: 'viewer', scope: 'tenant:a', actorId: null },
        ],
      ]);
    });

    it('changes nothing when the user holds the role in that scope already', async () => {
      const { assignments, cache, create, written } = await setup();
      const viewer = await create('viewer');
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, '');
      const before = written();
      expect(await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, '')).toBe(false);
      expect(written()).toEqual(before);
      // The repeat forgets once more: it may be the retry of a change whose forget after the
      // commit failed (a check in between may have cached what the database held before).
      expect(cache.forgottenUsers).toEqual([ALICE, ALICE, ALICE]);
    });

    it('refuses a user the user service does not know before anything else', async () => {
      const { assignments, store, admin } = await setup();
      const commits = store.commits;
      await expect(assignments.assign(PLATFORM, MISSING, { id: admin.id }, '')).rejects.toThrow(
        'User not found',
      );
      expect(store.commits).toBe(commits);
    });

    it('refuses a role that does not exist, by id or by name', async () => {
      const { assignments, written } = await setup();
      const before = written();
      for (const role of [{ id: MISSING }, { name: 'nobody' }])
        await expect(assignments.assign(PLATFORM, ALICE, role, '')).rejects.toThrow(
          'Role not found',
        );
      expect(written()).toEqual(before);
    });

    it('refuses a role granting more than the actor holds in that scope', async () => {
      const { assignments, create, written } = await setup();
      const scopedManager: Actor = { id: BOB };
      const assigner = await create('assigner', ['roles:assign', 'users:read']);
      const reader = await create('reader', ['users:read']);
      const writer = await create('writer', ['users:write']);
      await assignments.assign(PLATFORM, BOB, { id: assigner.id }, 'tenant:a');
      const before = written();
      await expect(assignments.assign(scopedManager, ALICE, { id: reader.id }, '')).rejects.toThrow(
        'You cannot grant what you do not hold: users:read',
      );
      await expect(
        assignments.assign(scopedManager, ALICE, { id: writer.id }, 'tenant:a'),
      ).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect(written()).toEqual(before);
      expect(await assignments.assign(scopedManager, ALICE, { id: reader.id }, 'tenant:a')).toBe(
        true,
      );
    });

    it('refuses to change what a stronger user holds, either way, and audits the attempt', async () => {
      const { assignments, store, create, admin, written } = await setup();
      const assigner = await create('assigner', ['roles:assign', 'users:read']);
      const reader = await create('reader', ['users:read']);
      await assignments.assign(PLATFORM, ALICE, { id: admin.id }, '');
      await assignments.assign(PLATFORM, ALICE, { id: reader.id }, '');
      await assignments.assign(PLATFORM, BOB, { id: assigner.id }, '');
      const before = written();
      const weaker: Actor = { id: BOB };
      for (const attempt of [
        () => assignments.assign(weaker, ALICE, { id: assigner.id }, ''),
        () => assignments.unassign(weaker, ALICE, reader.id, ''),
      ])
        await expect(attempt()).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect(written()).toEqual(before);
      expect(store.data.audit.filter((e) => e.action === 'access.refused')).toHaveLength(2);
      // A user no stronger than the actor is fine.
      expect(await assignments.assign(weaker, CAROL, { id: reader.id }, '')).toBe(true);
    });
  });

  describe('unassign', () => {
    it('refuses to take admin from the last active global admin; disabled admins do not count', async () => {
      const { assignments, users, admin, written } = await setup();
      await assignments.assign(PLATFORM, ALICE, { id: admin.id }, '');
      await assignments.assign(PLATFORM, BOB, { id: admin.id }, '');
      users.users.set(BOB, 'disabled');
      const before = written();
      await expect(assignments.unassign(PLATFORM, ALICE, admin.id, '')).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'userId',
        message: 'userId: is the last active global admin',
      });
      expect(written()).toEqual(before);

      users.users.set(BOB, 'active');
      expect(await assignments.unassign(PLATFORM, ALICE, admin.id, '')).toBe(true);
      // Now Bob is the last one.
      await expect(assignments.unassign(PLATFORM, BOB, admin.id, '')).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
    });

    it('guards only the global admin role: a scoped admin, a non-holder and other roles may go', async () => {
      const { assignments, admin, create } = await setup();
      const viewer = await create('viewer');
      await assignments.assign(PLATFORM, ALICE, { id: admin.id }, 'tenant:a');
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, '');
      expect(await assignments.unassign(PLATFORM, ALICE, admin.id, 'tenant:a')).toBe(true);
      expect(await assignments.unassign(PLATFORM, ALICE, admin.id, '')).toBe(false);
      expect(await assignments.unassign(PLATFORM, ALICE, viewer.id, '')).toBe(true);
    });

    it('fails and changes nothing while the cached permissions cannot be forgotten (Redis unreachable)', async () => {
      const { assignments, checks, cache, create, written } = await setup();
      const viewer = await create('viewer', ['users:read']);
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, '');
      const before = written();
      cache.failing = true;
      await expect(assignments.unassign(PLATFORM, ALICE, viewer.id, '')).rejects.toThrow(
        'ECONNREFUSED',
      );
      await expect(assignments.assign(PLATFORM, BOB, { id: viewer.id }, '')).rejects.toThrow(
        'ECONNREFUSED',
      );
      expect(written()).toEqual(before);
      cache.failing = false;
      expect(await checks.isAllowed(ALICE, '', 'users:read')).toBe(true);
      expect(await checks.isAllowed(BOB, '', 'users:read')).toBe(false);
    });

    it('records and forgets only a change that happened', async () => {
      const { assignments, store, cache, create, written } = await setup();
      const viewer = await create('viewer', ['users:read']);
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, 'tenant:a');
      expect(await assignments.unassign(PLATFORM, ALICE, viewer.id, '')).toBe(false);
      const before = written();
      cache.forgottenUsers.length = 0;
      expect(await assignments.unassign(PLATFORM, ALICE, viewer.id, 'tenant:a')).toBe(true);
      expect(cache.forgottenUsers).toEqual([ALICE, ALICE]);
      expect(written()).toEqual({
        ...before,
        assignments: before.assignments - 1,
        audit: before.audit + 1,
        outbox: before.outbox + 1,
      });
      expect(store.data.audit.at(-1)?.details).toEqual({
        before: { role: { id: viewer.id, name: 'viewer' }, scope: 'tenant:a' },
        after: null,
      });
      expect(store.data.outbox.at(-1)?.type).toBe('rbac.role_unassigned');
    });

    it('refuses a role that does not exist, and taking away more than the actor holds', async () => {
      const { assignments, admin, create } = await setup();
      await create('assigner', ['roles:assign']);
      await assignments.assign(PLATFORM, BOB, { name: 'assigner' }, '');
      await assignments.assign(PLATFORM, ALICE, { id: admin.id }, '');
      await expect(assignments.unassign(PLATFORM, ALICE, MISSING, '')).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(assignments.unassign({ id: BOB }, ALICE, admin.id, '')).rejects.toMatchObject({
        code: 'FORBIDDEN',
      });
    });
  });

  describe('listAssignments', () => {
    it('answers each user asked about, oldest assignment first', async () => {
      const { assignments, create } = await setup();
      const viewer = await create('viewer', ['users:read']);
      await assignments.assign(PLATFORM, ALICE, { name: 'user' }, '');
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, 'tenant:a');
      const byUser = await assignments.listAssignments([ALICE, BOB]);
      expect([...byUser.keys()]).toEqual([ALICE, BOB]);
      expect(
        byUser.get(ALICE)?.map((a) => [a.role.name, a.scope, a.role.effectivePermissions]),
      ).toEqual([
        ['user', '', []],
        ['viewer', 'tenant:a', ['users:read']],
      ]);
      expect(byUser.get(BOB)).toEqual([]);
    });
  });

  describe('removeDeletedUser', () => {
    it('removes the user’s assignments once per event, auditing each, and forgets them every time', async () => {
      const { assignments, store, cache, create } = await setup();
      const viewer = await create('viewer');
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, '');
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, 'tenant:a');
      await assignments.assign(PLATFORM, BOB, { id: viewer.id }, '');
      cache.forgottenUsers.length = 0;

      expect(await assignments.removeDeletedUser(ALICE, 'user-deleted', MISSING)).toBe(true);
      // A redelivery changes nothing, but forgets again (the first bump may have failed).
      await assignments.assign(PLATFORM, ALICE, { id: viewer.id }, '');
      expect(await assignments.removeDeletedUser(ALICE, 'user-deleted', MISSING)).toBe(false);
      // Removal (inside and after), the assignment (inside and after), the redelivery (after).
      expect(cache.forgottenUsers).toEqual([ALICE, ALICE, ALICE, ALICE, ALICE]);

      const removals = store.data.audit.filter((e) => e.action === 'role.unassigned');
      expect(removals.map((e) => [e.actorId, e.details])).toEqual([
        [
          null,
          {
            reason: 'user deleted',
            before: { role: { id: viewer.id, name: 'viewer' }, scope: null },
            after: null,
          },
        ],
        [
          null,
          {
            reason: 'user deleted',
            before: { role: { id: viewer.id, name: 'viewer' }, scope: 'tenant:a' },
            after: null,
          },
        ],
      ]);
      expect((await assignments.listAssignments([BOB])).get(BOB)).toHaveLength(1);
    });
  });
});
