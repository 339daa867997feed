// The MFA policy against the actors it binds: what an attack review found (docs/rbac.md, "MFA
// policy"). Over the fakes: admins A and B hold `admin` ("*"), HELPDESK users:read/write/delete.
import { describe, expect, it } from 'vitest';
import { PLATFORM } from './actor.policy';
import { createFakePermissionServices, createTestClock } from './testing/permission.fakes';

const ADMIN_A = '00000000-0000-4000-8000-00000000000a';
const ADMIN_B = '00000000-0000-4000-8000-00000000000b';
const HELPDESK = '00000000-0000-4000-8000-0000000000c1';
const OTHER = '00000000-0000-4000-8000-0000000000d1';
const CONSUMER = 'permission.mfa-changed';
let events = 0;
const eventId = () => `00000000-0000-4000-9000-${String(++events).padStart(12, '0')}`;
const HOUR = 3600;
const POLICY_REFUSED = { code: 'FORBIDDEN', reason: 'MFA_REQUIRED_TO_CHANGE_POLICY' };

async function setup() {
  // A second ahead of the fake database's clock, which stamps assignments with the real time.
  const clock = createTestClock(Date.now() + 1000);
  const services = createFakePermissionServices({ clock: clock.now });
  await services.roles.seed();
  const admin = (await services.roles.listRoles()).find((role) => role.name === 'admin');
  if (!admin) throw new Error('no admin role');
  for (const id of [ADMIN_A, ADMIN_B, HELPDESK, OTHER]) services.users.users.set(id, 'active');
  await services.assignments.assign(PLATFORM, ADMIN_A, { id: admin.id }, '');
  await services.assignments.assign(PLATFORM, ADMIN_B, { id: admin.id }, '');
  const helpdesk = await services.roles.createRole(PLATFORM, {
    name: 'helpdesk',
    description: null,
    permissions: ['users:delete', 'users:read', 'users:write'],
    inherits: [],
  });
  await services.assignments.assign(PLATFORM, HELPDESK, { id: helpdesk.id }, '');
  /** The auth service's state of the user becomes this, and auth.mfa_changed arrives. */
  const enrol = (userId: string, enrolled = true, version = 1) => {
    services.directory.states.set(userId, { enrolled, version });
    return services.mfa.record(userId, CONSUMER, eventId());
  };
  /** ADMIN_A (enrolled) requires MFA of `admin`; ADMIN_B has no second factor. */
  const requireMfaOfAdmin = async (gracePeriodSeconds: number) => {
    await enrol(ADMIN_A);
    await services.roles.setMfaRequirement({ id: ADMIN_A }, admin.id, {
      required: true,
      gracePeriodSeconds,
    });
  };
  const adminMfa = () => services.store.data.roles.find((role) => role.id === admin.id)?.mfa;
  return { ...services, clock, admin, helpdesk, enrol, requireMfaOfAdmin, adminMfa };
}

describe('what a running grace period lets an actor without a second factor do', () => {
  it('use what it grants, but not switch the requirement off', async () => {
    const { roles, admin, checks, clock, requireMfaOfAdmin, adminMfa } = await setup();
    await requireMfaOfAdmin(HOUR);
    expect(await checks.isAllowed(ADMIN_B, '', 'roles:manage')).toBe(true);
    await expect(
      roles.setMfaRequirement({ id: ADMIN_B }, admin.id, {
        required: false,
        gracePeriodSeconds: 0,
      }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(adminMfa()?.required).toBe(true);
    clock.advance(2 * HOUR);
    expect(await checks.isAllowed(ADMIN_B, '', 'roles:manage')).toBe(false);
  });

  it("not lengthen the grace period, nor restart everybody's by switching it off and on", async () => {
    const { roles, admin, checks, clock, requireMfaOfAdmin, adminMfa } = await setup();
    await requireMfaOfAdmin(600);
    clock.advance(590);
    for (const change of [
      { required: true, gracePeriodSeconds: 7200 },
      { required: false, gracePeriodSeconds: 0 },
      { required: true, gracePeriodSeconds: 600 },
    ])
      await expect(
        roles.setMfaRequirement({ id: ADMIN_B }, admin.id, change),
      ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(adminMfa()).toMatchObject({ required: true, gracePeriodSeconds: 600 });
    clock.advance(20);
    expect(await checks.isAllowed(ADMIN_B, '', 'users:delete')).toBe(false);
  });

  it('not mint a role of what it grants, nor assign one', async () => {
    const { roles, assignments, admin, helpdesk, checks, clock, requireMfaOfAdmin, store } =
      await setup();
    await requireMfaOfAdmin(HOUR);
    await expect(
      roles.createRole(
        { id: ADMIN_B },
        {
          name: 'ops-all',
          description: null,
          permissions: ['*'],
          inherits: [],
        },
      ),
    ).rejects.toThrow(/cannot grant what you do not hold: \*/);
    expect(store.data.roles.some((role) => role.name === 'ops-all')).toBe(false);
    // Neither to themselves through an existing unguarded role, nor to others.
    await expect(
      assignments.assign({ id: ADMIN_B }, ADMIN_B, { id: helpdesk.id }, ''),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(
      assignments.assign({ id: ADMIN_B }, OTHER, { id: admin.id }, ''),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(
      roles.updateRole({ id: ADMIN_B }, helpdesk.id, { permissions: ['*'] }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    clock.advance(90 * 24 * HOUR);
    expect(await checks.effectivePermissions(ADMIN_B, '')).toEqual([]);
  });

  it('pass on what comes through an unguarded path, and everything once enrolled', async () => {
    const { roles, assignments, helpdesk, requireMfaOfAdmin, enrol } = await setup();
    await requireMfaOfAdmin(HOUR);
    // ADMIN_B also holds helpdesk, which requires nothing: they may pass that on unenrolled.
    await assignments.assign(PLATFORM, ADMIN_B, { id: helpdesk.id }, '');
    await assignments.assign({ id: ADMIN_B }, OTHER, { id: helpdesk.id }, '');
    await enrol(ADMIN_B);
    await roles.createRole(
      { id: ADMIN_B },
      {
        name: 'ops-all',
        description: null,
        permissions: ['*'],
        inherits: [],
      },
    );
    await assignments.assign({ id: ADMIN_B }, OTHER, { id: helpdesk.id }, 'tenant:a');
  });

  it('fails closed: an actor whose second factor nobody can confirm passes nothing guarded on', async () => {
    const { roles, directory, store, requireMfaOfAdmin } = await setup();
    await requireMfaOfAdmin(HOUR);
    // ADMIN_B did enrol, but the projection has no row and the auth service cannot answer.
    directory.states.set(ADMIN_B, { enrolled: true, version: 1 });
    delete store.data.mfaStates[ADMIN_B];
    directory.failing = true;
    await expect(
      roles.createRole(
        { id: ADMIN_B },
        {
          name: 'ops-all',
          description: null,
          permissions: ['*'],
          inherits: [],
        },
      ),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe("changing a requirement needs the actor's own second factor", () => {
  it('lets an enrolled admin switch it off, or lengthen the grace', async () => {
    const { roles, admin, enrol, requireMfaOfAdmin, adminMfa } = await setup();
    await requireMfaOfAdmin(HOUR);
    await enrol(ADMIN_B);
    await roles.setMfaRequirement({ id: ADMIN_B }, admin.id, {
      required: true,
      gracePeriodSeconds: 2 * HOUR,
    });
    expect(adminMfa()).toMatchObject({ required: true, gracePeriodSeconds: 2 * HOUR });
    await roles.setMfaRequirement({ id: ADMIN_B }, admin.id, {
      required: false,
      gracePeriodSeconds: 0,
    });
    expect(adminMfa()?.required).toBe(false);
  });

  it('refuses an author without one, so nobody is locked out by what they set (any grace)', async () => {
    const { roles, assignments, admin, checks, clock, adminMfa } = await setup();
    const rbacAdmin = await roles.createRole(PLATFORM, {
      name: 'rbac-admin',
      description: null,
      permissions: ['roles:manage', 'roles:read'],
      inherits: [],
    });
    await assignments.assign(PLATFORM, ADMIN_A, { id: rbacAdmin.id }, '');
    for (const gracePeriodSeconds of [0, 1])
      await expect(
        roles.setMfaRequirement({ id: ADMIN_A }, admin.id, { required: true, gracePeriodSeconds }),
      ).rejects.toMatchObject(POLICY_REFUSED);
    expect(adminMfa()?.required).toBe(false);
    clock.advance(2);
    expect(await checks.isAllowed(ADMIN_A, '', '*')).toBe(true);
  });

  it('lets the author, enrolled, undo it at once (and shorten the grace)', async () => {
    const { roles, admin, checks, clock, requireMfaOfAdmin, adminMfa } = await setup();
    await requireMfaOfAdmin(HOUR);
    await roles.setMfaRequirement({ id: ADMIN_A }, admin.id, {
      required: true,
      gracePeriodSeconds: 0,
    });
    clock.advance(2);
    expect(await checks.isAllowed(ADMIN_A, '', 'roles:manage')).toBe(true);
    await roles.setMfaRequirement({ id: ADMIN_A }, admin.id, {
      required: false,
      gracePeriodSeconds: 0,
    });
    expect(adminMfa()?.required).toBe(false);
  });
});

describe('acting on a user who has not enrolled yet', () => {
  it('counts everything their roles grant: helpdesk may not disable, delete or reassign an admin', async () => {
    const { userChanges, assignments, helpdesk, clock, requireMfaOfAdmin, checks } = await setup();
    await requireMfaOfAdmin(HOUR);
    clock.advance(HOUR + 1);
    expect(await checks.effectivePermissions(ADMIN_B, '')).toEqual([]);
    for (const change of ['disable', 'delete'] as const)
      await expect(userChanges.begin({ id: HELPDESK }, ADMIN_B, change)).rejects.toThrow(
        /cannot act on a user who holds permissions you do not: \*/,
      );
    await expect(
      assignments.assign({ id: HELPDESK }, ADMIN_B, { id: helpdesk.id }, ''),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('the projection of second factors', () => {
  it('stores what the auth service says, whatever the event claims (a forged one pins nothing)', async () => {
    const { checks, directory, mfa, store, requireMfaOfAdmin } = await setup();
    await requireMfaOfAdmin(0);
    // Whatever an event about ADMIN_B says, the auth service says: no factor, version 3.
    directory.states.set(ADMIN_B, { enrolled: false, version: 3 });
    await mfa.record(ADMIN_B, CONSUMER, eventId());
    expect(store.data.mfaStates[ADMIN_B]).toEqual({ enrolled: false, version: 3 });
    expect(await checks.isAllowed(ADMIN_B, '', '*')).toBe(false);
    // A later real change is followed.
    directory.states.set(ADMIN_B, { enrolled: true, version: 4 });
    expect(await mfa.record(ADMIN_B, CONSUMER, eventId())).toBe(true);
    expect(await checks.isAllowed(ADMIN_B, '', '*')).toBe(true);
  });

  it('fails the delivery while the auth service cannot answer, so it is retried, not trusted', async () => {
    const { checks, directory, mfa, store, requireMfaOfAdmin } = await setup();
    await requireMfaOfAdmin(0);
    directory.states.set(ADMIN_B, { enrolled: true, version: 2 });
    directory.failing = true;
    const id = eventId();
    await expect(mfa.record(ADMIN_B, CONSUMER, id)).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
    });
    expect(store.data.processed).not.toContain(`${CONSUMER}|${id}`);
    expect(store.data.mfaStates[ADMIN_B]).toBeUndefined();
    // The redelivery, once it answers, is handled.
    directory.failing = false;
    expect(await mfa.record(ADMIN_B, CONSUMER, id)).toBe(true);
    expect(await checks.isAllowed(ADMIN_B, '', '*')).toBe(true);
  });

  it('lets the auth service correct a version-0 (backfilled) row', async () => {
    const { checks, directory, mfa, clock, requireMfaOfAdmin } = await setup();
    await requireMfaOfAdmin(0);
    // Enrolled before the auth service versioned states: backfilled as version 0.
    directory.states.set(ADMIN_B, { enrolled: true, version: 0 });
    expect(await checks.isAllowed(ADMIN_B, '', 'users:delete')).toBe(true);
    // TOTP turned off through an auth instance that does not version states yet.
    directory.states.set(ADMIN_B, { enrolled: false, version: 0 });
    expect(await mfa.record(ADMIN_B, CONSUMER, eventId())).toBe(true);
    clock.advance(1);
    expect(await checks.isAllowed(ADMIN_B, '', 'users:delete')).toBe(false);
  });

  it('asks the auth service about many users in one call', async () => {
    const { assignments, checks, directory, store, requireMfaOfAdmin, helpdesk } = await setup();
    await requireMfaOfAdmin(HOUR);
    await assignments.assign(PLATFORM, OTHER, { id: helpdesk.id }, '');
    const guarded = [ADMIN_B, HELPDESK, OTHER];
    // HELPDESK and OTHER hold `admin` too, through its requirement; nobody has a row yet.
    const admin = (await store.roles.loadGraph()).all().find((role) => role.name === 'admin');
    for (const userId of [HELPDESK, OTHER])
      await assignments.assign(PLATFORM, userId, { id: admin?.id ?? '' }, '');
    store.data.mfaStates = { [ADMIN_A]: { enrolled: true, version: 1 } };
    directory.calls = 0;
    directory.asked = [];
    await assignments.listAssignments([ADMIN_A, ...guarded]);
    expect(directory.asked).toEqual([guarded]);

    store.data.mfaStates = { [ADMIN_A]: { enrolled: true, version: 1 } };
    directory.asked = [];
    await checks.effectivePermissionsOf([ADMIN_A, ...guarded], '');
    expect(directory.asked).toEqual([guarded]);
  });
});
