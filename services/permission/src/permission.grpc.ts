import { AppError } from '@platform/errors';
import type { GrpcClient, UnaryHandlers } from '@platform/grpc';
import {
  isGranted,
  isValidPermission,
  permissionProblem,
  ROLE_NAME,
  SCOPE,
  uncovered,
} from '@platform/permissions';
import { userV1, type permissionV1 } from '@platform/proto';
import { isUuid, requireId } from '@platform/validation';
import type { PermissionCache } from './permission.cache';
import type { RoleView } from './role.graph';
import type { Actor, AssignmentView, RoleRepository } from './role.repository';

const MAX_BATCH = 100;
const MAX_PERMISSIONS_PER_ROLE = 100;
const MAX_PARENTS = 20;
const MAX_DESCRIPTION = 500;

type UserClient = GrpcClient<typeof userV1.UserServiceService>;

function requireScope(scope: string): string {
  if (scope !== '' && !SCOPE.test(scope))
    throw AppError.badInput('scope', 'must be 1-200 letters, digits or _.:-');
  return scope;
}

function requireName(name: string): string {
  if (!ROLE_NAME.test(name))
    throw AppError.badInput(
      'name',
      'must be 2-50 lowercase letters, digits, _ or -, starting with a letter',
    );
  return name;
}

function requireDescription(description: string | undefined): string | null {
  const trimmed = description?.trim();
  if (trimmed && trimmed.length > MAX_DESCRIPTION)
    throw AppError.badInput('description', `must be at most ${MAX_DESCRIPTION} characters`);
  return trimmed || null;
}

function requireGrantable(permissions: readonly string[]): string[] {
  if (permissions.length > MAX_PERMISSIONS_PER_ROLE)
    throw AppError.badInput('permissions', `at most ${MAX_PERMISSIONS_PER_ROLE} per role`);
  for (const permission of permissions) {
    const problem = permissionProblem(permission);
    if (problem) throw AppError.badInput('permissions', problem);
  }
  return [...new Set(permissions)].sort();
}

function requireParentIds(ids: readonly string[]): string[] {
  if (ids.length > MAX_PARENTS) throw AppError.badInput('inherits', `at most ${MAX_PARENTS}`);
  for (const id of ids) requireId('inherits', id);
  return [...new Set(ids)].sort();
}

function toRole(role: RoleView): permissionV1.Role {
  return {
    id: role.id,
    name: role.name,
    description: role.description ?? undefined,
    permissions: role.permissions,
    inherits: role.inherits,
    effectivePermissions: role.effectivePermissions,
    system: role.system,
  };
}

function toAssignment(assignment: AssignmentView): permissionV1.Assignment {
  return {
    role: toRole(assignment.role),
    scope: assignment.scope,
    assignedAt: assignment.assignedAt,
  };
}

export function createPermissionHandlers(deps: {
  roles: RoleRepository;
  cache: PermissionCache;
  users: UserClient;
}): UnaryHandlers<typeof permissionV1.PermissionServiceService> {
  const { roles, cache, users } = deps;

  async function effective(userId: string, scope: string): Promise<string[]> {
    requireId('userId', userId);
    requireScope(scope);
    return cache.get(userId, scope, () => roles.effectivePermissions(userId, scope));
  }

  function requireValid(permission: string): string {
    if (!isValidPermission(permission))
      throw AppError.badInput('permission', 'must look like resource:action');
    return permission;
  }

  /** The platform (no actor), or a user bound by the no-escalation rule. */
  function actorOf(actorId: string): Actor {
    if (actorId === '') return { id: null };
    requireId('actorId', actorId);
    return {
      id: actorId,
      async guard(granted, scope) {
        const missing = uncovered(await effective(actorId, scope), granted);
        if (missing.length > 0)
          throw AppError.forbidden(`You cannot grant what you do not hold: ${missing.join(', ')}`);
      },
    };
  }

  async function requireUser(userId: string): Promise<void> {
    requireId('userId', userId);
    await users.getUser({ id: userId }); // NOT_FOUND when there is no such user
  }

  return {
    async checkPermission(request) {
      const required = requireValid(request.permission);
      return { allowed: isGranted(await effective(request.userId, request.scope), required) };
    },

    async checkPermissions(request) {
      if (request.permissions.length > MAX_BATCH)
        throw AppError.badInput('permissions', `at most ${MAX_BATCH} per call`);
      const required = request.permissions.map(requireValid);
      const granted = await effective(request.userId, request.scope);
      return { allowed: required.map((needed) => isGranted(granted, needed)) };
    },

    async listEffectivePermissions(request) {
      return { permissions: await effective(request.userId, request.scope) };
    },

    async batchListEffectivePermissions(request) {
      if (request.userIds.length > MAX_BATCH)
        throw AppError.badInput('userIds', `at most ${MAX_BATCH} per call`);
      const permissions = await Promise.all(
        request.userIds.map((userId) => effective(userId, request.scope)),
      );
      return {
        users: request.userIds.map((userId, index) => ({
          userId,
          permissions: permissions[index] ?? [],
        })),
      };
    },

    async listPermissions() {
      return { permissions: await roles.listPermissions() };
    },

    async listRoles() {
      return { roles: (await roles.listRoles()).map(toRole) };
    },

    async batchGetRoles(request) {
      if (request.ids.length > MAX_BATCH)
        throw AppError.badInput('ids', `at most ${MAX_BATCH} per call`);
      const ids = request.ids.filter((id) => isUuid(id));
      return { roles: (await roles.getRoles(ids)).map(toRole) };
    },

    async createRole(request) {
      const role = await roles.createRole(actorOf(request.actorId), {
        name: requireName(request.name),
        description: requireDescription(request.description),
        permissions: requireGrantable(request.permissions),
        inherits: requireParentIds(request.inherits),
      });
      // A new role is assigned to no one yet: nobody's permissions changed.
      return { role: toRole(role) };
    },

    async updateRole(request) {
      requireId('id', request.id);
      const role = await roles.updateRole(actorOf(request.actorId), request.id, {
        name: request.name === undefined ? undefined : requireName(request.name),
        description:
          request.description === undefined ? undefined : requireDescription(request.description),
        permissions: request.permissions && requireGrantable(request.permissions.values),
        inherits: request.inherits && requireParentIds(request.inherits.values),
      });
      await cache.forgetRoles();
      return { role: toRole(role) };
    },

    async deleteRole(request) {
      requireId('id', request.id);
      await roles.deleteRole(actorOf(request.actorId), request.id);
      await cache.forgetRoles();
      return {};
    },

    async assignRole(request) {
      const scope = requireScope(request.scope);
      if (request.roleId) requireId('roleId', request.roleId);
      else if (!request.roleName) throw AppError.badInput('roleId', 'is required');
      const actor = actorOf(request.actorId);
      await requireUser(request.userId);
      const changed = await roles.assign(
        actor,
        request.userId,
        request.roleId ? { id: request.roleId } : { name: request.roleName },
        scope,
      );
      // The very next check, on any instance, must see the new role.
      if (changed) await cache.forgetUser(request.userId);
      return { changed };
    },

    async unassignRole(request) {
      const scope = requireScope(request.scope);
      requireId('userId', request.userId);
      requireId('roleId', request.roleId);
      const changed = await roles.unassign(
        actorOf(request.actorId),
        request.userId,
        request.roleId,
        scope,
      );
      if (changed) await cache.forgetUser(request.userId);
      return { changed };
    },

    async listAssignments(request) {
      const userId = requireId('userId', request.userId);
      const byUser = await roles.listAssignments([userId]);
      return { assignments: (byUser.get(userId) ?? []).map(toAssignment) };
    },

    async batchListAssignments(request) {
      if (request.userIds.length > MAX_BATCH)
        throw AppError.badInput('userIds', `at most ${MAX_BATCH} per call`);
      for (const userId of request.userIds) requireId('userIds', userId);
      const byUser = await roles.listAssignments(request.userIds);
      return {
        users: request.userIds.map((userId) => ({
          userId,
          assignments: (byUser.get(userId) ?? []).map(toAssignment),
        })),
      };
    },

    async isLastAdmin(request) {
      requireId('userId', request.userId);
      if (!(await roles.holdsGlobalAdmin(request.userId))) return { lastAdmin: false };
      const others = await roles.otherGlobalAdmins(request.userId);
      return { lastAdmin: !(await anyActive(users, others)) };
    },

    async listAuditEntries(request) {
      const first = request.first;
      if (!Number.isInteger(first) || first < 1 || first > 100)
        throw AppError.badInput('first', 'must be between 1 and 100');
      const after = request.after ? decodeAuditCursor(request.after) : null;
      const rows = await roles.listAudit(first + 1, after);
      return {
        entries: rows.slice(0, first).map((row) => ({
          id: row.id,
          cursor: Buffer.from(`audit:${row.seq}`).toString('base64url'),
          actorId: row.actorId ?? '',
          action: row.action,
          target: row.target,
          details: (row.details ?? undefined) as Record<string, unknown> | undefined,
          createdAt: row.createdAt,
        })),
        hasNextPage: rows.length > first,
      };
    },
  };
}

/** The position an audit-log cursor stands for; BAD_USER_INPUT when it is not one of ours. */
function decodeAuditCursor(cursor: string): bigint {
  const match = /^audit:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match?.[1]) throw AppError.badInput('after', 'is not a valid cursor');
  return BigInt(match[1]);
}

/** Whether any of these users exists and is active. */
export async function anyActive(users: UserClient, ids: string[]): Promise<boolean> {
  if (ids.length === 0) return false;
  const { users: found } = await users.batchGetUsers({ ids });
  return found.some((user) => user.status === userV1.UserStatus.USER_STATUS_ACTIVE);
}
