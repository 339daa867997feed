import { AppError } from '@platform/errors';
import { createEvent, type EventPayload } from '@platform/events';
import { BUILT_IN_ROLES, PERMISSION_CATALOGUE } from '@platform/permissions';
import type { Actor, ActorPolicy } from './actor.policy';
import type { AuditRecord } from './audit.repository';
import { ADMIN_ROLE } from './last-admin.rule';
import type { MfaRequirement } from './mfa.policy';
import type { PermissionCache } from './permission.cache';
import type { RbacReads } from './rbac.reads';
import { RoleGraph, type RoleNode, type RoleView } from './role.graph';
import type { RbacStore, RbacTransaction } from './rbac.store';

/** A role as the gRPC layer parsed it: well-formed, lists sorted and without repeats. */
export interface RoleInput {
  name: string;
  description: string | null;
  permissions: string[];
  inherits: string[];
}

/** What to change of a role; absent: unchanged. */
export interface RoleChange {
  name?: string | undefined;
  description?: string | null | undefined;
  permissions?: string[] | undefined;
  inherits?: string[] | undefined;
}

/** The use cases on roles and the permission catalogue. */
export interface RoleService {
  /** Seeds the permission catalogue and the built-in roles; safe on every start. */
  seed(): Promise<void>;
  listPermissions(): Promise<{ name: string; description: string }[]>;
  /** Every role, by name. */
  listRoles(): Promise<RoleView[]>;
  /** The roles with these ids; unknown ids are left out. */
  getRoles(ids: readonly string[]): Promise<RoleView[]>;
  createRole(actor: Actor, input: RoleInput): Promise<RoleView>;
  updateRole(actor: Actor, id: string, change: RoleChange): Promise<RoleView>;
  deleteRole(actor: Actor, id: string): Promise<void>;
  /**
   * Whether the role's permissions need a second factor, and the grace period of its holders
   * without one. Switching it on starts the grace period for every holder (counted from now, or
   * from their assignment if later); changing only the grace period keeps when it started.
   */
  setMfaRequirement(
    actor: Actor,
    id: string,
    change: { required: boolean; gracePeriodSeconds: number },
  ): Promise<RoleView>;
}

const roleSummary = (role: RoleNode) => ({
  name: role.name,
  description: role.description,
  permissions: role.permissions,
  inherits: role.inherits,
});

/** The role's audit entry and its event, in the change's transaction. */
async function recordRoleChange(
  tx: RbacTransaction,
  actor: Actor,
  role: RoleNode,
  change: EventPayload<'rbac.role_changed'>['change'],
  details: AuditRecord['details'],
): Promise<void> {
  await tx.audit.append({
    actorId: actor.id,
    action: `role.${change}`,
    target: `role:${role.id}`,
    details,
  });
  await tx.outbox.enqueue(
    createEvent('rbac.role_changed', { roleId: role.id, roleName: role.name, change }),
  );
}

function requireParents(graph: RoleGraph, inherits: readonly string[]): void {
  for (const id of inherits)
    if (!graph.get(id)) throw AppError.badInput('inherits', `no role has the id ${id}`);
}

async function requireNameFree(tx: RbacTransaction, name: string): Promise<void> {
  if (await tx.roles.findByName(name))
    throw AppError.conflict(`A role named "${name}" already exists`);
}

/** The role after `change`, or why it may not become that. */
function changedRole(graph: RoleGraph, before: RoleNode, change: RoleChange): RoleNode {
  const after: RoleNode = {
    ...before,
    name: change.name ?? before.name,
    description: change.description === undefined ? before.description : change.description,
    permissions: change.permissions ?? before.permissions,
    inherits: change.inherits ?? before.inherits,
  };
  if (before.system && after.name !== before.name)
    throw AppError.badInput('name', 'of a built-in role cannot change');
  if (before.name === ADMIN_ROLE && (change.permissions || change.inherits))
    throw AppError.badInput('permissions', 'of the admin role are always "*"');
  requireParents(graph, after.inherits);
  if (graph.closesCycle(before.id, after.inherits))
    throw AppError.badInput('inherits', 'would make the role inherit from itself');
  return after;
}

const mfaSummary = (mfa: MfaRequirement) => ({
  requiresMfa: mfa.required,
  mfaGracePeriodSeconds: mfa.gracePeriodSeconds,
  mfaRequiredSince: mfa.requiredSince?.toISOString() ?? null,
});

export function createRoleService({
  store,
  reads,
  policy,
  cache,
  clock = () => new Date(),
}: {
  store: RbacStore;
  /** Reads of the graph, remembered while current. */
  reads: Pick<RbacReads, 'graph'>;
  policy: ActorPolicy;
  cache: Pick<PermissionCache, 'forgetRoles' | 'forgetRoleGraph'>;
  clock?: () => Date;
}): RoleService {
  return {
    async seed() {
      const changed = await store.transaction(async (tx) => {
        let seeded = false;
        await tx.roles.lockGraph();
        for (const [name, description] of Object.entries(PERMISSION_CATALOGUE))
          await tx.roles.upsertPermission(name, description);
        for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
          const existing = await tx.roles.findByName(name);
          if (!existing)
            await tx.roles.create({
              name,
              description: role.description,
              permissions: role.permissions,
              inherits: [],
              system: true,
            });
          else if (!existing.system) await tx.roles.markSystem(name);
          seeded ||= !existing?.system;
        }
        return seeded;
      });
      // Other instances may hold the graph from before (a roll-out that adds a built-in role).
      if (changed) await cache.forgetRoleGraph();
    },

    async listPermissions() {
      return store.roles.listPermissions();
    },

    async listRoles() {
      return (await reads.graph()).all();
    },

    async getRoles(ids) {
      const graph = await reads.graph();
      return ids.flatMap((id) => {
        const role = graph.get(id);
        return role ? [graph.view(role)] : [];
      });
    },

    async createRole(actor, input) {
      // A new role is assigned to no one yet: nobody's permissions changed, but the graph that
      // lists and resolves roles did (RbacReads): its version goes, inside and once committed.
      const created = await store.transaction(async (tx) => {
        await tx.roles.lockGraph();
        const graph = await tx.roles.loadGraph();
        requireParents(graph, input.inherits);
        await policy.requireMayGrant(
          actor,
          graph.grantedBy(input.permissions, input.inherits),
          '',
          {
            action: 'role.created',
            target: `role:${input.name}`,
          },
        );
        await requireNameFree(tx, input.name);
        const role = await tx.roles.create(input);
        await recordRoleChange(tx, actor, role, 'created', { after: roleSummary(role) });
        await cache.forgetRoleGraph();
        return new RoleGraph([...graph.all(), role]).view(role);
      });
      await cache.forgetRoleGraph();
      return created;
    },

    async updateRole(actor, id, change) {
      const updated = await store.transaction(async (tx) => {
        await tx.roles.lockGraph();
        const graph = await tx.roles.loadGraph();
        const before = graph.get(id);
        if (!before) throw AppError.notFound('Role');
        const after = changedRole(graph, before, change);
        // What it grants before and after: emptying a role takes from its holders what it
        // granted, which only someone holding all of it may do.
        await policy.requireMayGrant(
          actor,
          [
            ...graph.view(before).effectivePermissions,
            ...graph.grantedBy(after.permissions, after.inherits),
          ],
          '',
          { action: 'role.updated', target: `role:${id}` },
        );
        if (after.name !== before.name) await requireNameFree(tx, after.name);

        await tx.roles.rename(id, { name: after.name, description: after.description });
        const granted = after.permissions.filter((p) => !before.permissions.includes(p));
        const revoked = before.permissions.filter((p) => !after.permissions.includes(p));
        await tx.roles.removePermissions(id, revoked);
        await tx.roles.addPermissions(id, granted);
        if (change.inherits) await tx.roles.replaceParents(id, after.inherits);

        await recordRoleChange(tx, actor, after, 'updated', {
          before: roleSummary(before),
          after: roleSummary(after),
        });
        const permissionChanges = [
          ...granted.map((permission) => ['permission.granted', null, permission] as const),
          ...revoked.map((permission) => ['permission.revoked', permission, null] as const),
        ];
        for (const [action, was, now] of permissionChanges)
          await tx.audit.append({
            actorId: actor.id,
            action,
            target: `role:${id}`,
            details: { role: after.name, before: was, after: now },
          });
        // Every user holding it, or a role below it, may hold other permissions now: forgotten
        // inside the transaction (Redis unreachable rolls the change back) and once committed.
        await cache.forgetRoles();
        return new RoleGraph(graph.all().map((role) => (role.id === id ? after : role))).view(
          after,
        );
      });
      await cache.forgetRoles();
      return updated;
    },

    async setMfaRequirement(actor, id, change) {
      const updated = await store.transaction(async (tx) => {
        await tx.roles.lockGraph();
        const graph = await tx.roles.loadGraph();
        const before = graph.get(id);
        if (!before) throw AppError.notFound('Role');
        // Like any change of the role: only someone who could grant all it grants (without
        // counting what they hold only through a grace period) may make its permissions harder
        // (or easier) to use.
        const attempt = { action: 'role.updated', target: `role:${id}` };
        await policy.requireMayGrant(actor, graph.view(before).effectivePermissions, '', attempt);
        const requirement: MfaRequirement = {
          required: change.required,
          gracePeriodSeconds: change.gracePeriodSeconds,
          requiredSince: !change.required
            ? null
            : before.mfa.required
              ? before.mfa.requiredSince
              : clock(),
        };
        const after: RoleNode = { ...before, mfa: requirement };
        const same =
          before.mfa.required === requirement.required &&
          before.mfa.gracePeriodSeconds === requirement.gracePeriodSeconds;
        if (same) return graph.view(before);
        // Any change needs the actor to have a second factor: switching a requirement off or
        // lengthening its grace (a password alone must not weaken the policy, nor restart
        // everybody's grace by switching it off and on), switching it on or shortening its
        // grace (the author can always undo it: the requirement never withholds from them).
        await policy.requireSecondFactor(actor, attempt);
        const next = new RoleGraph(graph.all().map((role) => (role.id === id ? after : role)));
        await tx.roles.setMfaRequirement(id, requirement);
        await recordRoleChange(tx, actor, after, 'updated', {
          before: mfaSummary(before.mfa),
          after: mfaSummary(requirement),
        });
        // Every holder's permissions may differ now (or at another time): forgotten inside the
        // transaction and once committed, as for any role change.
        await cache.forgetRoles();
        return next.view(after);
      });
      // Also when nothing changed: this may be the retry of a change whose forget failed after
      // it committed.
      await cache.forgetRoles();
      return updated;
    },

    async deleteRole(actor, id) {
      await store.transaction(async (tx) => {
        await tx.roles.lockGraph();
        const graph = await tx.roles.loadGraph();
        const role = graph.get(id);
        if (!role) throw AppError.notFound('Role');
        if (role.system)
          throw AppError.badInput('id', 'names a built-in role, which cannot be deleted');
        await policy.requireMayGrant(actor, graph.view(role).effectivePermissions, '', {
          action: 'role.deleted',
          target: `role:${id}`,
        });
        // Assignments racing the deletion land first or find the role gone: none is missed.
        await tx.roles.takeForDeletion(id);
        const assignments = await tx.assignments.countForRole(id);
        const inheritedBy = await tx.roles.childIds(id);
        await tx.roles.delete(id);
        await recordRoleChange(tx, actor, role, 'deleted', {
          before: { ...roleSummary(role), assignments, inheritedBy },
          after: null,
        });
        await cache.forgetRoles();
      });
      await cache.forgetRoles();
    },
  };
}
