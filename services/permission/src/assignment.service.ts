import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import type { Actor, ActorPolicy } from './actor.policy';
import { ADMIN_ROLE, type LastAdminRule } from './last-admin.rule';
import { mfaMatters, standingOf, type AssignmentStanding } from './mfa.policy';
import type { MfaStates } from './mfa-state.service';
import type { PermissionCache } from './permission.cache';
import type { RoleNode, RoleView } from './role.graph';
import type { RbacReads } from './rbac.reads';
import type { RbacStore, RbacTransaction } from './rbac.store';
import type { UserDirectory } from './user.directory';

/** A role to assign: by id, or by name (the platform's own assignments). */
export type RoleRef = { id: string } | { name: string };

export interface AssignmentView {
  role: RoleView;
  /** "": global. */
  scope: string;
  assignedAt: Date;
  /** How the MFA policy stands on it now. */
  mfa: AssignmentStanding;
}

const NOT_PENDING: AssignmentStanding = Object.freeze({
  mfaPending: false,
  graceEndsAt: null,
  withheld: [],
});

/** The use cases on role assignments. */
export interface AssignmentService {
  /** True when the assignment is new. NOT_FOUND for an unknown role or user. */
  assign(actor: Actor, userId: string, role: RoleRef, scope: string): Promise<boolean>;
  /** True when there was such an assignment. The last active global admin stays one. */
  unassign(actor: Actor, userId: string, roleId: string, scope: string): Promise<boolean>;
  /** Each user's assignments, oldest first. */
  listAssignments(userIds: readonly string[]): Promise<Map<string, AssignmentView[]>>;
  /** A deleted user's assignments go (once per event id); true when this call did it. */
  removeDeletedUser(userId: string, consumer: string, eventId: string): Promise<boolean>;
}

/** An assignment's audit entry and its event, in the change's transaction. */
async function recordAssignmentChange(
  tx: RbacTransaction,
  actor: Actor,
  change: 'assigned' | 'unassigned',
  userId: string,
  role: RoleNode,
  scope: string,
): Promise<void> {
  const assignment = { role: { id: role.id, name: role.name }, scope: scope || null };
  await tx.audit.append({
    actorId: actor.id,
    action: `role.${change}`,
    target: `user:${userId}`,
    details: {
      before: change === 'assigned' ? null : assignment,
      after: change === 'assigned' ? assignment : null,
    },
  });
  const payload = {
    userId,
    roleId: role.id,
    roleName: role.name,
    scope: scope || null,
    actorId: actor.id,
  };
  await tx.outbox.enqueue(
    change === 'assigned'
      ? createEvent('rbac.role_assigned', payload)
      : createEvent('rbac.role_unassigned', payload),
  );
}

export function createAssignmentService(deps: {
  store: RbacStore;
  /** Reads of the graph and of assignments, remembered while current. */
  reads: RbacReads;
  policy: ActorPolicy;
  cache: Pick<PermissionCache, 'forgetUser'>;
  users: Pick<UserDirectory, 'requireExists'>;
  lastAdmin: LastAdminRule;
  /** Users' second factors, asked only about users holding a role that requires one. */
  mfa: Pick<MfaStates, 'enrolments'>;
  clock?: () => Date;
}): AssignmentService {
  const { store, reads, policy, cache, users, lastAdmin, mfa } = deps;
  const clock = deps.clock ?? (() => new Date());
  /**
   * A change forgets the user's cached permissions twice: inside its transaction (Redis
   * unreachable fails and rolls back the change: no change that checks could miss) and here,
   * once committed (a check between the two may have cached what the database held before the
   * commit, under the first new version). See PermissionCache.
   */
  const forgetAgain = (userId: string) => cache.forgetUser(userId);

  return {
    async assign(actor, userId, which, scope) {
      await users.requireExists(userId);
      const changed = await store.transaction(async (tx) => {
        const graph = await tx.roles.loadGraph();
        const role =
          'id' in which
            ? graph.get(which.id)
            : graph.all().find((candidate) => candidate.name === which.name);
        // Held until the assignment commits, so that a deletion of the role begun meanwhile waits
        // and then takes the assignment with the role. A deletion that got there first (committed,
        // or under way though the graph still showed the role) leaves nothing to hold: NOT_FOUND,
        // as for a role that never existed, and nothing written.
        if (!role || !(await tx.roles.holdRole(role.id))) throw AppError.notFound('Role');
        const attempt = { action: 'role.assigned', target: `user:${userId}` };
        await policy.requireMayGrant(actor, graph.view(role).effectivePermissions, scope, attempt);
        // Nor may a weaker actor change what a stronger user holds.
        await policy.requireMayActOn(actor, userId, attempt);
        if (!(await tx.assignments.insert({ userId, roleId: role.id, scope }))) return false;
        await recordAssignmentChange(tx, actor, 'assigned', userId, role, scope);
        await cache.forgetUser(userId);
        return true;
      });
      // The very next check, on any instance, must see the new role. Also when nothing changed:
      // this may be the client's retry of a change whose forget failed after it committed.
      await forgetAgain(userId);
      return changed;
    },

    async unassign(actor, userId, roleId, scope) {
      const changed = await store.transaction(async (tx) => {
        const graph = await tx.roles.loadGraph();
        const role = graph.get(roleId);
        if (!role) throw AppError.notFound('Role');
        const attempt = { action: 'role.unassigned', target: `user:${userId}` };
        await policy.requireMayGrant(actor, graph.view(role).effectivePermissions, scope, attempt);
        await policy.requireMayActOn(actor, userId, attempt);
        if (role.name === ADMIN_ROLE && scope === '') {
          // Under the lock, two admins stepping down (or being disabled or deleted) at once
          // cannot both see the other stay.
          await tx.roles.lockGraph();
          await lastAdmin.requireNotLast(tx, userId);
        }
        if (!(await tx.assignments.delete({ userId, roleId, scope }))) return false;
        await recordAssignmentChange(tx, actor, 'unassigned', userId, role, scope);
        await cache.forgetUser(userId);
        return true;
      });
      await forgetAgain(userId);
      return changed;
    },

    async listAssignments(userIds) {
      const { graph, rows } = await reads.assignments(userIds);
      const now = clock();
      // Whether each user has a second factor, asked only of those it matters for, all at once.
      const guarded = userIds.filter((userId) =>
        mfaMatters(
          graph,
          rows.filter((row) => row.userId === userId),
        ),
      );
      const enrolments = await mfa.enrolments(guarded);
      const enrolled = new Map(
        [...enrolments].map(([userId, enrolment]) => [userId, enrolment.enrolled] as const),
      );
      const byUser = new Map<string, AssignmentView[]>(userIds.map((id) => [id, []]));
      for (const row of rows) {
        const role = graph.get(row.roleId);
        const known = enrolled.get(row.userId);
        if (role)
          byUser.get(row.userId)?.push({
            role: graph.view(role),
            scope: row.scope,
            assignedAt: row.assignedAt,
            mfa:
              known === undefined
                ? NOT_PENDING
                : standingOf({ graph, assignment: row, enrolled: known, now }),
          });
      }
      return byUser;
    },

    async removeDeletedUser(userId, consumer, eventId) {
      const removed = await store.transaction(async (tx) => {
        if (!(await tx.outbox.processOnce(consumer, eventId))) return false;
        const graph = await tx.roles.loadGraph();
        const assignments = await tx.assignments.listForUsers([userId]);
        await tx.assignments.deleteForUser(userId);
        for (const assignment of assignments)
          await tx.audit.append({
            actorId: null,
            action: 'role.unassigned',
            target: `user:${userId}`,
            details: {
              reason: 'user deleted',
              before: {
                role: { id: assignment.roleId, name: graph.get(assignment.roleId)?.name ?? null },
                scope: assignment.scope || null,
              },
              after: null,
            },
          });
        await cache.forgetUser(userId);
        return true;
      });
      // Also on a redelivery: the bump may be what failed the first time.
      await forgetAgain(userId);
      return removed;
    },
  };
}
