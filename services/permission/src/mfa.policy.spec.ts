import { describe, expect, it } from 'vitest';
import {
  grantOf,
  mfaMatters,
  NO_MFA_REQUIREMENT,
  standingOf,
  type MfaRequirement,
} from './mfa.policy';
import { RoleGraph, type RoleNode } from './role.graph';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const HOUR = 3600;

const required = (gracePeriodSeconds: number, since: number): MfaRequirement => ({
  required: true,
  gracePeriodSeconds,
  requiredSince: at(since),
});

const role = (
  id: string,
  permissions: string[],
  inherits: string[] = [],
  mfa: MfaRequirement = NO_MFA_REQUIREMENT,
): RoleNode => ({ id, name: id, description: null, system: false, permissions, inherits, mfa });

/** `ops` (users:write) inherits `reader` (users:read); `plain` grants audit:read. */
function graphWith(requirements: { ops?: MfaRequirement; reader?: MfaRequirement } = {}) {
  return new RoleGraph([
    role('reader', ['users:read'], [], requirements.reader),
    role('ops', ['users:write'], ['reader'], requirements.ops),
    role('plain', ['audit:read']),
  ]);
}

const assigned = (roleId: string, seconds: number, scope = '') => ({
  roleId,
  scope,
  assignedAt: at(seconds),
});

describe('the MFA policy (grantOf)', () => {
  it('grants everything to a user with a second factor, at any time', () => {
    const graph = graphWith({ ops: required(0, 0) });
    const grant = grantOf({
      graph,
      assignments: [assigned('ops', 0)],
      scope: '',
      enrolled: true,
      now: at(10 * HOUR),
    });
    expect(grant).toEqual({
      permissions: ['users:read', 'users:write'],
      withheld: [],
      validUntil: null,
    });
  });

  it('withholds what a role requiring MFA grants (inherited included) from a user without one, at once with no grace', () => {
    const graph = graphWith({ ops: required(0, 0) });
    const grant = grantOf({
      graph,
      assignments: [assigned('ops', 0), assigned('plain', 0)],
      scope: '',
      enrolled: false,
      now: at(0),
    });
    expect(grant).toEqual({
      permissions: ['audit:read'],
      withheld: ['users:read', 'users:write'],
      validUntil: null,
    });
  });

  it('keeps them for the grace period, up to its last millisecond, and says when it ends', () => {
    const graph = graphWith({ ops: required(24 * HOUR, 0) });
    const input = { graph, assignments: [assigned('ops', 0)], scope: '', enrolled: false };
    const during = grantOf({ ...input, now: new Date(T0 + 24 * HOUR * 1000 - 1) });
    expect(during.permissions).toEqual(['users:read', 'users:write']);
    expect(during.validUntil).toEqual(at(24 * HOUR));
    const ended = grantOf({ ...input, now: at(24 * HOUR) });
    expect(ended.permissions).toEqual([]);
    expect(ended.withheld).toEqual(['users:read', 'users:write']);
    expect(ended.validUntil).toBeNull();
  });

  it('counts the grace period from the later of the assignment and the switch-on', () => {
    // Switched on at 10 h: a holder since 0 h has until 10 h + 2 h.
    const graph = graphWith({ ops: required(2 * HOUR, 10 * HOUR) });
    const early = { graph, assignments: [assigned('ops', 0)], scope: '', enrolled: false };
    expect(grantOf({ ...early, now: at(11 * HOUR) }).validUntil).toEqual(at(12 * HOUR));
    expect(grantOf({ ...early, now: at(12 * HOUR) }).permissions).toEqual([]);
    // Assigned at 20 h: until 22 h.
    const late = { ...early, assignments: [assigned('ops', 20 * HOUR)] };
    expect(grantOf({ ...late, now: at(21 * HOUR) }).permissions).toEqual([
      'users:read',
      'users:write',
    ]);
    expect(grantOf({ ...late, now: at(22 * HOUR) }).permissions).toEqual([]);
  });

  it('covers a parent requiring MFA through any child: its permissions, not the child’s own', () => {
    const graph = graphWith({ reader: required(0, 0) });
    const grant = grantOf({
      graph,
      assignments: [assigned('ops', 0)],
      scope: '',
      enrolled: false,
      now: at(1),
    });
    expect(grant.permissions).toEqual(['users:write']);
    expect(grant.withheld).toEqual(['users:read']);
  });

  it('lets a permission through when another assignment grants it without the requirement', () => {
    const graph = graphWith({ ops: required(0, 0) });
    const grant = grantOf({
      graph,
      assignments: [assigned('ops', 0), assigned('reader', 0)],
      scope: '',
      enrolled: false,
      now: at(1),
    });
    expect(grant.permissions).toEqual(['users:read']);
    expect(grant.withheld).toEqual(['users:write']);
  });

  it('on a path through two roles requiring MFA, ends with the shorter grace period', () => {
    const graph = graphWith({ ops: required(5 * HOUR, 0), reader: required(1 * HOUR, 0) });
    const input = { graph, assignments: [assigned('ops', 0)], scope: '', enrolled: false };
    const grant = grantOf({ ...input, now: at(2 * HOUR) });
    expect(grant.permissions).toEqual(['users:write']);
    expect(grant.withheld).toEqual(['users:read']);
    expect(grant.validUntil).toEqual(at(5 * HOUR));
  });

  it('applies per scope: a scoped assignment only there, a global one everywhere', () => {
    const graph = graphWith({ ops: required(0, 0) });
    const input = { graph, assignments: [assigned('ops', 0, 'tenant:a')], enrolled: true };
    expect(grantOf({ ...input, scope: 'tenant:a', now: at(1) }).permissions).toEqual([
      'users:read',
      'users:write',
    ]);
    expect(grantOf({ ...input, scope: 'tenant:b', now: at(1) }).permissions).toEqual([]);
  });

  it('ends on a cycle that slipped into the stored roles', () => {
    const graph = new RoleGraph([
      role('a', ['users:read'], ['b'], required(0, 0)),
      role('b', ['audit:read'], ['a']),
    ]);
    const input = { graph, assignments: [assigned('a', 0)], scope: '', now: at(1) };
    expect(grantOf({ ...input, enrolled: true }).permissions).toEqual(['audit:read', 'users:read']);
    expect(grantOf({ ...input, enrolled: false }).withheld).toEqual(['audit:read', 'users:read']);
  });

  it('matters only when a role the user reaches requires MFA', () => {
    expect(mfaMatters(graphWith(), [assigned('ops', 0)])).toBe(false);
    expect(mfaMatters(graphWith({ reader: required(0, 0) }), [assigned('ops', 0)])).toBe(true);
    expect(mfaMatters(graphWith({ ops: required(0, 0) }), [assigned('reader', 0)])).toBe(false);
  });
});

describe('the MFA policy (standingOf)', () => {
  it('tells a holder what is pending, until when, and what is withheld already', () => {
    const graph = graphWith({ ops: required(3 * HOUR, 0), reader: required(0, 0) });
    expect(
      standingOf({ graph, assignment: assigned('ops', 0), enrolled: false, now: at(HOUR) }),
    ).toEqual({ mfaPending: true, graceEndsAt: at(3 * HOUR), withheld: ['users:read'] });
    expect(
      standingOf({ graph, assignment: assigned('ops', 0), enrolled: true, now: at(HOUR) }),
    ).toEqual({ mfaPending: false, graceEndsAt: null, withheld: [] });
    expect(
      standingOf({ graph, assignment: assigned('plain', 0), enrolled: false, now: at(HOUR) }),
    ).toEqual({ mfaPending: false, graceEndsAt: null, withheld: [] });
  });
});
