import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@platform/testing';
import { codeOf, graphql, signUp, type GraphQLResponse, type SignedIn } from './graphql.client';
import { DISABLE_TOTP, enrolTotp, mfaAuthEnv } from './mfa.helpers';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

const CREATE_ROLE = `mutation ($input: CreateRoleInput!) { createRole(input: $input) { id } }`;
const SET_REQUIREMENT = `mutation ($id: ID!, $required: Boolean!, $grace: Int!) {
  setRoleMfaRequirement(id: $id, required: $required, gracePeriodSeconds: $grace) {
    id requiresMfa mfaGracePeriodSeconds mfaRequiredSince } }`;
const ASSIGN = `mutation ($userId: ID!, $roleId: ID!) { assignRole(userId: $userId, roleId: $roleId) }`;
/** Needs audit:read, which the roles below grant. */
const AUDIT = '{ auditLog(first: 1) { edges { cursor } } }';
const MY_ROLES = `{ me { roles { role { name requiresMfa } mfaPending mfaGraceEndsAt withheldPermissions } } }`;

interface MyRoles {
  me: {
    roles: {
      role: { name: string; requiresMfa: boolean };
      mfaPending: boolean;
      mfaGraceEndsAt: string | null;
      withheldPermissions: string[];
    }[];
  };
}

describe('roles that require a second factor, through the gateway', () => {
  let platform: Platform | undefined;
  let gateway: string;
  let admin: SignedIn;
  let users = 0;

  beforeAll(async () => {
    platform = await startPlatform({ 'auth-service': mfaAuthEnv() });
    ({ gateway, admin } = platform);
    // Changing a role's MFA requirement needs the actor's own second factor.
    await enrolTotp(gateway, admin);
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  const as = <T>(who: SignedIn, query: string, variables?: Record<string, unknown>) =>
    graphql<T>(gateway, query, { token: who.token, variables });

  async function asAdmin<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const response = await as<T>(admin, query, variables);
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data;
  }

  const newUser = () => signUp(gateway, `mfa-policy-${++users}@example.com`);

  /** A new role granting `permissions`, requiring MFA with this grace period, held by a new user. */
  async function holderOfGuardedRole(name: string, grace: number, permissions = ['audit:read']) {
    const { createRole } = await asAdmin<{ createRole: { id: string } }>(CREATE_ROLE, {
      input: { name, permissions },
    });
    const user = await newUser();
    await asAdmin(ASSIGN, { userId: user.id, roleId: createRole.id });
    const { setRoleMfaRequirement } = await asAdmin<{
      setRoleMfaRequirement: Record<string, unknown>;
    }>(SET_REQUIREMENT, { id: createRole.id, required: true, grace });
    expect(setRoleMfaRequirement).toMatchObject({
      id: createRole.id,
      requiresMfa: true,
      mfaGracePeriodSeconds: grace,
      mfaRequiredSince: expect.any(String) as unknown,
    });
    return { ...user, roleId: createRole.id };
  }

  const refused = (response: GraphQLResponse<unknown>) => codeOf(response) === 'FORBIDDEN';

  it('withholds the role from a user without a second factor, grants it once they enrol TOTP, and withholds it again when they turn TOTP off', async () => {
    const user = await holderOfGuardedRole('mfa-auditor', 0);
    expect(codeOf(await as(user, AUDIT))).toBe('FORBIDDEN');
    const before = await as<MyRoles>(user, MY_ROLES);
    expect(before.data?.me.roles).toContainEqual({
      role: { name: 'mfa-auditor', requiresMfa: true },
      mfaPending: true,
      mfaGraceEndsAt: null,
      withheldPermissions: ['audit:read'],
    });

    await enrolTotp(gateway, user);
    // The enrolment reaches the permission service as an event (through the outbox relay).
    await eventually(async () => {
      const response = await as<{ auditLog: unknown }>(user, AUDIT);
      expect(response.errors).toBeUndefined();
      expect(response.data?.auditLog).toBeTruthy();
    }, 15_000);
    const after = await as<MyRoles>(user, MY_ROLES);
    expect(after.data?.me.roles.find((r) => r.role.name === 'mfa-auditor')).toMatchObject({
      mfaPending: false,
      withheldPermissions: [],
    });

    const disabled = await as<{ disableTotp: boolean }>(user, DISABLE_TOTP);
    expect(disabled.data).toEqual({ disableTotp: true });
    await eventually(async () => expect(refused(await as(user, AUDIT))).toBe(true), 15_000);
  });

  it('lets a user without a second factor keep the role for the grace period, then withholds it without any event', async () => {
    const user = await holderOfGuardedRole('mfa-graced', 4);
    const during = await as<{ auditLog: unknown }>(user, AUDIT);
    expect(during.errors).toBeUndefined();
    const roles = await as<MyRoles>(user, MY_ROLES);
    const held = roles.data?.me.roles.find((r) => r.role.name === 'mfa-graced');
    expect(held).toMatchObject({ mfaPending: true, withheldPermissions: [] });
    expect(Date.parse(held?.mfaGraceEndsAt ?? '')).toBeGreaterThan(Date.now() - 1000);

    await eventually(async () => expect(refused(await as(user, AUDIT))).toBe(true), 15_000);
    const ended = await as<MyRoles>(user, MY_ROLES);
    expect(ended.data?.me.roles.find((r) => r.role.name === 'mfa-graced')).toMatchObject({
      mfaPending: true,
      mfaGraceEndsAt: null,
      withheldPermissions: ['audit:read'],
    });
  });

  it('refuses any change of a requirement to an actor without a second factor, with its reason', async () => {
    const { createRole } = await asAdmin<{ createRole: { id: string } }>(CREATE_ROLE, {
      input: { name: 'mfa-unguarded', permissions: ['audit:read'] },
    });
    // An admin ("*") who has not set up a second factor: the author could not undo it.
    const { roles } = await asAdmin<{ roles: { id: string; name: string }[] }>(
      '{ roles { id name } }',
    );
    const adminRole = roles.find((role) => role.name === 'admin');
    const other = await newUser();
    await asAdmin(ASSIGN, { userId: other.id, roleId: adminRole?.id });
    const response = await as(other, SET_REQUIREMENT, {
      id: createRole.id,
      required: true,
      grace: 3600,
    });
    expect(response.errors?.[0]?.extensions).toMatchObject({
      code: 'FORBIDDEN',
      reason: 'MFA_REQUIRED_TO_CHANGE_POLICY',
    });
  });

  it('lets a holder in the grace period use the role, but neither weaken its requirement nor pass on what it grants', async () => {
    const user = await holderOfGuardedRole('mfa-ops', 3600, ['audit:read', 'roles:manage']);
    const used = await as<{ auditLog: unknown }>(user, AUDIT);
    expect(used.errors).toBeUndefined();
    const off = await as(user, SET_REQUIREMENT, { id: user.roleId, required: false, grace: 0 });
    expect(codeOf(off)).toBe('FORBIDDEN');
    const copy = await as(user, CREATE_ROLE, {
      input: { name: 'mfa-ops-copy', permissions: ['audit:read'] },
    });
    expect(codeOf(copy)).toBe('FORBIDDEN');
    const { roles } = await asAdmin<{
      roles: { name: string; requiresMfa: boolean; mfaGracePeriodSeconds: number }[];
    }>('{ roles { name requiresMfa mfaGracePeriodSeconds } }');
    expect(roles.find((role) => role.name === 'mfa-ops')).toMatchObject({
      requiresMfa: true,
      mfaGracePeriodSeconds: 3600,
    });
    expect(roles.some((role) => role.name === 'mfa-ops-copy')).toBe(false);
  });
});
