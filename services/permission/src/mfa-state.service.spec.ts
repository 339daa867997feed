import { describe, expect, it } from 'vitest';
import { PLATFORM } from './actor.policy';
import { createFakePermissionServices, createTestClock } from './testing/permission.fakes';

const USER = '00000000-0000-4000-8000-000000000001';
const WEAK = '00000000-0000-4000-8000-000000000002';
const CONSUMER = 'permission.mfa-changed';
let events = 0;
const eventId = () => `00000000-0000-4000-9000-${String(++events).padStart(12, '0')}`;

/** The use cases over fakes: USER holds `ops` (users:write, inheriting `reader`: users:read). */
async function setup(options: { gracePeriodSeconds?: number; required?: boolean } = {}) {
  // A second ahead of the fake database's clock, which stamps assignments with the real time.
  const clock = createTestClock(Date.now() + 1000);
  const services = createFakePermissionServices({ clock: clock.now });
  services.users.users.set(USER, 'active');
  const reader = await services.roles.createRole(PLATFORM, {
    name: 'reader',
    description: null,
    permissions: ['users:read'],
    inherits: [],
  });
  const ops = await services.roles.createRole(PLATFORM, {
    name: 'ops',
    description: null,
    permissions: ['users:write'],
    inherits: [reader.id],
  });
  await services.assignments.assign(PLATFORM, USER, { id: ops.id }, '');
  if (options.required ?? true)
    await services.roles.setMfaRequirement(PLATFORM, ops.id, {
      required: true,
      gracePeriodSeconds: options.gracePeriodSeconds ?? 0,
    });
  /** The auth service's state becomes this, and auth.mfa_changed about USER arrives. */
  const mfaChanged = (enrolled: boolean, version: number, id = eventId()) => {
    services.directory.states.set(USER, { enrolled, version });
    return services.mfa.record(USER, CONSUMER, id);
  };
  const permissions = () => services.checks.effectivePermissions(USER, '');
  return { ...services, clock, ops, reader, mfaChanged, permissions };
}

describe('the MFA policy in checks', () => {
  it('withholds a role requiring MFA from a user without a second factor, and grants it once they enrol', async () => {
    const { permissions, mfaChanged, checks } = await setup();
    expect(await permissions()).toEqual([]);
    expect(await mfaChanged(true, 1)).toBe(true);
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    expect(await checks.isAllowed(USER, 'tenant:a', 'users:write')).toBe(true);
    expect(await mfaChanged(false, 2)).toBe(true);
    expect(await checks.isAllowed(USER, '', 'users:write')).toBe(false);
  });

  it('lets the grace period end without any event, however the answer was cached', async () => {
    const { permissions, clock } = await setup({ gracePeriodSeconds: 60 });
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    clock.advance(59);
    // Cached now; the entry must not outlive the grace period.
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    clock.advance(2);
    expect(await permissions()).toEqual([]);
  });

  it('starts the grace period when the requirement is switched on, not at the assignment', async () => {
    const { permissions, clock, roles, ops } = await setup({ required: false });
    clock.advance(3600);
    await roles.setMfaRequirement(PLATFORM, ops.id, { required: true, gracePeriodSeconds: 60 });
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    // Changing only the grace period keeps its start.
    clock.advance(50);
    await roles.setMfaRequirement(PLATFORM, ops.id, { required: true, gracePeriodSeconds: 45 });
    expect(await permissions()).toEqual([]);
    await roles.setMfaRequirement(PLATFORM, ops.id, { required: false, gracePeriodSeconds: 0 });
    expect(await permissions()).toEqual(['users:read', 'users:write']);
  });

  it("keeps the newest state whatever order the auth service's answers are stored in", async () => {
    const { permissions, mfaChanged } = await setup();
    // Disabled (version 2) is stored before an answer read earlier (version 1).
    expect(await mfaChanged(false, 2)).toBe(true);
    expect(await mfaChanged(true, 1)).toBe(false);
    expect(await permissions()).toEqual([]);
    expect(await mfaChanged(true, 3)).toBe(true);
    expect(await permissions()).toEqual(['users:read', 'users:write']);
  });

  it('handles a redelivered event once', async () => {
    const { permissions, mfaChanged, store, cache } = await setup();
    const id = eventId();
    expect(await mfaChanged(true, 1, id)).toBe(true);
    expect(await mfaChanged(true, 1, id)).toBe(false);
    expect(store.data.processed.filter((key) => key === `${CONSUMER}|${id}`)).toHaveLength(1);
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    // Forgotten again on the redelivery too (the first forget may be what failed).
    expect(cache.forgottenUsers.filter((user) => user === USER).length).toBeGreaterThanOrEqual(3);
  });

  it('asks the auth service about a user it has no row of (enrolled before the projection), once', async () => {
    const { permissions, directory, store, mfaChanged } = await setup();
    directory.states.set(USER, { enrolled: true, version: 4 });
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    expect(store.data.mfaStates[USER]).toEqual({ enrolled: true, version: 4 });
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    expect(directory.calls).toBe(1);
    // An answer older than the stored one changes nothing.
    expect(await mfaChanged(false, 3)).toBe(false);
    expect(await permissions()).toEqual(['users:read', 'users:write']);
  });

  it('fails closed while the auth service cannot answer, and does not remember that answer', async () => {
    const { permissions, directory, checks } = await setup();
    directory.states.set(USER, { enrolled: true, version: 1 });
    directory.failing = true;
    expect(await permissions()).toEqual([]);
    expect(await checks.isAllowed(USER, '', 'users:read')).toBe(false);
    directory.failing = false;
    expect(await permissions()).toEqual(['users:read', 'users:write']);
  });

  it('asks the auth service for the state whatever the event carries (written before it did)', async () => {
    const { permissions, directory, mfa } = await setup();
    directory.states.set(USER, { enrolled: true, version: 2 });
    expect(await mfa.record(USER, CONSUMER, eventId())).toBe(true);
    expect(await permissions()).toEqual(['users:read', 'users:write']);
  });

  it('does not ask about the second factor of a user no role of whom requires one', async () => {
    const { permissions, directory } = await setup({ required: false });
    expect(await permissions()).toEqual(['users:read', 'users:write']);
    expect(directory.calls).toBe(0);
  });

  it('shows the holder what is pending on their assignment', async () => {
    const { assignments, clock } = await setup({ gracePeriodSeconds: 60 });
    const [during] = (await assignments.listAssignments([USER])).get(USER) ?? [];
    expect(during?.mfa).toEqual({
      mfaPending: true,
      graceEndsAt: new Date(clock.now().getTime() + 60_000),
      withheld: [],
    });
    clock.advance(61);
    const [after] = (await assignments.listAssignments([USER])).get(USER) ?? [];
    expect(after?.mfa).toMatchObject({
      mfaPending: true,
      graceEndsAt: null,
      withheld: ['users:read', 'users:write'],
    });
  });
});

describe('setMfaRequirement', () => {
  it('audits the change as role.updated, emits rbac.role_changed and forgets every user', async () => {
    const { roles, ops, store, cache } = await setup({ required: false });
    const before = cache.rolesForgotten;
    const role = await roles.setMfaRequirement(PLATFORM, ops.id, {
      required: true,
      gracePeriodSeconds: 3600,
    });
    expect(role.mfa).toMatchObject({ required: true, gracePeriodSeconds: 3600 });
    expect(store.data.audit.at(-1)).toMatchObject({
      action: 'role.updated',
      target: `role:${ops.id}`,
      details: {
        before: { requiresMfa: false, mfaGracePeriodSeconds: 0, mfaRequiredSince: null },
        after: { requiresMfa: true, mfaGracePeriodSeconds: 3600 },
      },
    });
    expect(store.data.outbox.at(-1)).toMatchObject({
      type: 'rbac.role_changed',
      payload: { roleId: ops.id, change: 'updated' },
    });
    expect(cache.rolesForgotten).toBe(before + 2);
    // The same again: nothing written (but forgotten again: it may be a retry).
    const audited = store.data.audit.length;
    await roles.setMfaRequirement(PLATFORM, ops.id, { required: true, gracePeriodSeconds: 3600 });
    expect(store.data.audit).toHaveLength(audited);
  });

  it('is refused to someone who could not grant what the role grants', async () => {
    const { roles, ops, users, assignments, store } = await setup({ required: false });
    users.users.set(WEAK, 'active');
    const manager = await roles.createRole(PLATFORM, {
      name: 'manager',
      description: null,
      permissions: ['roles:manage'],
      inherits: [],
    });
    await assignments.assign(PLATFORM, WEAK, { id: manager.id }, '');
    await expect(
      roles.setMfaRequirement({ id: WEAK }, ops.id, { required: true, gracePeriodSeconds: 0 }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(store.data.roles.find((role) => role.id === ops.id)?.mfa.required).toBe(false);
  });

  it('is refused to an author without a second factor, whichever way it changes', async () => {
    const { roles, users, assignments, store, directory, mfa } = await setup({ required: false });
    users.users.set(WEAK, 'active');
    const admins = await roles.createRole(PLATFORM, {
      name: 'admins',
      description: null,
      permissions: ['*'],
      inherits: [],
    });
    await assignments.assign(PLATFORM, WEAK, { id: admins.id }, '');
    const author = { id: WEAK };
    const refused = { code: 'FORBIDDEN', reason: 'MFA_REQUIRED_TO_CHANGE_POLICY' };
    // While the auth service cannot say: fail closed.
    directory.failing = true;
    await expect(
      roles.setMfaRequirement(author, admins.id, { required: true, gracePeriodSeconds: 600 }),
    ).rejects.toMatchObject(refused);
    directory.failing = false;
    // Without a factor, even with a grace period: the author, too, must be able to undo it.
    for (const gracePeriodSeconds of [0, 1, 600])
      await expect(
        roles.setMfaRequirement(author, admins.id, { required: true, gracePeriodSeconds }),
      ).rejects.toMatchObject(refused);
    expect(store.data.roles.find((role) => role.id === admins.id)?.mfa.required).toBe(false);
    expect(store.data.audit.at(-1)).toMatchObject({
      actorId: WEAK,
      action: 'access.refused',
      target: `role:${admins.id}`,
      details: { attempted: 'role.updated' },
    });
    // Once they enrol, no grace is needed: the requirement withholds nothing from them.
    directory.states.set(WEAK, { enrolled: true, version: 1 });
    await mfa.record(WEAK, CONSUMER, eventId());
    await roles.setMfaRequirement(author, admins.id, { required: true, gracePeriodSeconds: 0 });
    await roles.setMfaRequirement(author, admins.id, { required: false, gracePeriodSeconds: 0 });
  });
});
