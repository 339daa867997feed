import type { RoleGraph, RoleNode } from './role.graph';

/** A role's MFA requirement (docs/rbac.md, "MFA policy"). */
export interface MfaRequirement {
  /** Its permissions apply only to holders with a second factor (after the grace period). */
  required: boolean;
  /** How long a holder without a second factor keeps them. */
  gracePeriodSeconds: number;
  /** When `required` was last switched on; null while it is off. */
  requiredSince: Date | null;
}

export const NO_MFA_REQUIREMENT: MfaRequirement = Object.freeze({
  required: false,
  gracePeriodSeconds: 0,
  requiredSince: null,
});

/** The longest grace period a role may have: 90 days. */
export const MAX_MFA_GRACE_SECONDS = 90 * 24 * 3600;

/** What the rule needs of an assignment. */
export interface AssignedRoleRef {
  roleId: string;
  /** "": global. */
  scope: string;
  assignedAt: Date;
}

/** What the user's assignments grant at one moment. */
export interface Grant {
  /** Sorted, without repeats. */
  permissions: string[];
  /** What the roles would grant but the MFA policy withholds now (not granted otherwise), sorted. */
  withheld: string[];
  /**
   * When this answer may change without any event: the earliest end of a grace period that still
   * lets permissions through. Null: not before something changes.
   */
  validUntil: Date | null;
}

/** An assignment as its holder should understand it. */
export interface AssignmentStanding {
  /** Some role it grants through (itself or an ancestor) requires MFA and the user has none. */
  mfaPending: boolean;
  /** While pending: when the earliest grace period still running ends; null when none runs. */
  graceEndsAt: Date | null;
  /** What it would grant but the policy withholds now, sorted (the same for every scope). */
  withheld: string[];
}

const OPEN = Number.POSITIVE_INFINITY;

/**
 * Until when (ms) the requirement of `role` lets its permissions through to a holder without a
 * second factor, for an assignment made at `assignedAt`: the grace period counts from the later of
 * the assignment and the moment the requirement was switched on.
 */
function openUntil(role: RoleNode, assignedAt: Date): number {
  const { required, gracePeriodSeconds, requiredSince } = role.mfa;
  if (!required) return OPEN;
  const from = Math.max(assignedAt.getTime(), requiredSince?.getTime() ?? 0);
  return from + gracePeriodSeconds * 1000;
}

/**
 * Every role the assignment reaches (the assigned role and its ancestors), each with until when
 * it lets its permissions through to a holder without a second factor: a path through the
 * inheritance is open while every role on it that requires MFA is in its grace period (so a
 * requirement on a role covers what it inherits, and a requirement on a parent covers what the
 * parent grants through any child); of several paths to a role, the one open longest counts.
 */
function reach(graph: RoleGraph, assignment: AssignedRoleRef): Map<string, number> {
  const best = new Map<string, number>();
  const root = graph.get(assignment.roleId);
  if (!root) return best;
  best.set(root.id, openUntil(root, assignment.assignedAt));
  const pending = [root.id];
  for (let id = pending.pop(); id !== undefined; id = pending.pop()) {
    const until = best.get(id) ?? -OPEN;
    for (const parentId of graph.get(id)?.inherits ?? []) {
      const parent = graph.get(parentId);
      if (!parent) continue;
      const candidate = Math.min(until, openUntil(parent, assignment.assignedAt));
      // Values only grow, and come from a finite set: this ends, cycles included.
      if (candidate > (best.get(parentId) ?? -OPEN)) {
        best.set(parentId, candidate);
        pending.push(parentId);
      }
    }
  }
  return best;
}

/** Whether any role the assignments reach has an MFA requirement that could withhold something. */
export function mfaMatters(graph: RoleGraph, assignments: readonly AssignedRoleRef[]): boolean {
  return assignments.some((assignment) =>
    [...reach(graph, assignment).values()].some((until) => until !== OPEN),
  );
}

const inScope = (assignment: AssignedRoleRef, scope: string) =>
  assignment.scope === '' || assignment.scope === scope;

/**
 * The scopes the assignments name (besides the global one): in any other scope they grant
 * exactly what they grant globally (see inScope).
 */
export const assignedScopesOf = (assignments: readonly AssignedRoleRef[]): string[] => [
  ...new Set(assignments.map(({ scope }) => scope).filter((scope) => scope !== '')),
];

/**
 * What the user's assignments grant in `scope` at `now` (the global ones in every scope). With a
 * second factor (`enrolled`), everything their roles grant; without, what comes through a role
 * requiring MFA only while its grace period lasts, or, with `graceOver`, not at all (what the
 * user holds as if every grace period had ended: what they may pass on, see actor.policy.ts).
 */
export function grantOf(input: {
  graph: RoleGraph;
  assignments: readonly AssignedRoleRef[];
  scope: string;
  enrolled: boolean;
  now: Date;
  graceOver?: boolean;
}): Grant {
  const { graph, enrolled } = input;
  // Every grace period ended: only paths without a requirement stay open (`until` is OPEN).
  const now = input.graceOver ? Number.MAX_VALUE : input.now.getTime();
  const granted = new Set<string>();
  const gated = new Set<string>();
  let validUntil = OPEN;
  for (const assignment of input.assignments) {
    if (!inScope(assignment, input.scope)) continue;
    for (const [roleId, until] of reach(graph, assignment)) {
      const permissions = graph.get(roleId)?.permissions ?? [];
      if (enrolled || until > now) {
        for (const permission of permissions) granted.add(permission);
        if (!enrolled && until !== OPEN) validUntil = Math.min(validUntil, until);
      } else for (const permission of permissions) gated.add(permission);
    }
  }
  return {
    permissions: [...granted].sort(),
    withheld: [...gated].filter((permission) => !granted.has(permission)).sort(),
    validUntil: validUntil === OPEN ? null : new Date(validUntil),
  };
}

/** How the MFA policy stands on one assignment of a user (for `me.roles`). */
export function standingOf(input: {
  graph: RoleGraph;
  assignment: AssignedRoleRef;
  enrolled: boolean;
  now: Date;
}): AssignmentStanding {
  if (input.enrolled) return { mfaPending: false, graceEndsAt: null, withheld: [] };
  const now = input.now.getTime();
  let pending = false;
  let graceEnd = OPEN;
  const open = new Set<string>();
  const closed = new Set<string>();
  for (const [roleId, until] of reach(input.graph, input.assignment)) {
    const permissions = input.graph.get(roleId)?.permissions ?? [];
    if (until !== OPEN) pending = true;
    if (until > now) {
      for (const permission of permissions) open.add(permission);
      if (until !== OPEN) graceEnd = Math.min(graceEnd, until);
    } else for (const permission of permissions) closed.add(permission);
  }
  return {
    mfaPending: pending,
    graceEndsAt: graceEnd === OPEN ? null : new Date(graceEnd),
    withheld: [...closed].filter((permission) => !open.has(permission)).sort(),
  };
}
