import { AppError } from '@platform/errors';
import type { UnaryHandlers } from '@platform/grpc';
import { isValidPermission, permissionProblem, ROLE_NAME, SCOPE } from '@platform/permissions';
import { permissionV1 } from '@platform/proto';
import {
  decodeSequenceCursor,
  encodeSequenceCursor,
  isUuid,
  requireId,
} from '@platform/validation';
import { PLATFORM, type Actor } from './actor.policy';
import { MAX_MFA_GRACE_SECONDS, type AssignmentStanding } from './mfa.policy';
import type { AssignmentService, AssignmentView } from './assignment.service';
import type { AuditService } from './audit.service';
import type { PermissionCheckService } from './permission-check.service';
import type { RoleView } from './role.graph';
import type { RoleService } from './role.service';
import type { UserChange, UserChangeService } from './user-change.service';

// Requests become well-formed commands here (formats and sizes: BAD_USER_INPUT naming the
// field) and answers become messages; every rule that needs state lives in the services.

const MAX_BATCH = 100;
const MAX_PERMISSIONS_PER_ROLE = 100;
const MAX_PARENTS = 20;
const MAX_DESCRIPTION = 500;
const AUDIT_CURSOR = 'audit';

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

function requirePermission(permission: string): string {
  if (!isValidPermission(permission))
    throw AppError.badInput('permission', 'must look like resource:action');
  return permission;
}

function requireBatch<T>(field: string, items: readonly T[]): readonly T[] {
  if (items.length > MAX_BATCH) throw AppError.badInput(field, `at most ${MAX_BATCH} per call`);
  return items;
}

/** The user and scope of a check. */
function requireSubject(userId: string, scope: string): { userId: string; scope: string } {
  return { userId: requireId('userId', userId), scope: requireScope(scope) };
}

/** An empty actor id is the platform itself. */
function actorOf(actorId: string): Actor {
  return actorId === '' ? PLATFORM : { id: requireId('actorId', actorId) };
}

const USER_CHANGES: Partial<Record<permissionV1.UserChange, UserChange>> = {
  [permissionV1.UserChange.USER_CHANGE_DISABLE]: 'disable',
  [permissionV1.UserChange.USER_CHANGE_ENABLE]: 'enable',
  [permissionV1.UserChange.USER_CHANGE_DELETE]: 'delete',
};

function requireUserChange(change: permissionV1.UserChange): UserChange {
  const known = USER_CHANGES[change];
  if (!known) throw AppError.badInput('change', 'must be DISABLE, ENABLE or DELETE');
  return known;
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
    requiresMfa: role.mfa.required,
    mfaGracePeriodSeconds: role.mfa.gracePeriodSeconds,
    mfaRequiredSince: role.mfa.requiredSince ?? undefined,
  };
}

function toStanding(standing: AssignmentStanding) {
  return {
    mfaPending: standing.mfaPending,
    mfaGraceEndsAt: standing.graceEndsAt ?? undefined,
    withheldPermissions: standing.withheld,
  };
}

function toAssignment(assignment: AssignmentView): permissionV1.Assignment {
  return {
    role: toRole(assignment.role),
    scope: assignment.scope,
    assignedAt: assignment.assignedAt,
    ...toStanding(assignment.mfa),
  };
}

function requireGracePeriod(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_MFA_GRACE_SECONDS)
    throw AppError.badInput(
      'gracePeriodSeconds',
      `must be a whole number of seconds from 0 to ${MAX_MFA_GRACE_SECONDS} (90 days)`,
    );
  return seconds;
}

export function createPermissionHandlers(deps: {
  roles: RoleService;
  assignments: AssignmentService;
  checks: PermissionCheckService;
  audit: AuditService;
  userChanges: UserChangeService;
}): UnaryHandlers<typeof permissionV1.PermissionServiceService> {
  const { roles, assignments, checks, audit, userChanges } = deps;

  return {
    async checkPermission(request) {
      const permission = requirePermission(request.permission);
      const { userId, scope } = requireSubject(request.userId, request.scope);
      return { allowed: await checks.isAllowed(userId, scope, permission) };
    },

    async checkPermissions(request) {
      const permissions = requireBatch('permissions', request.permissions).map(requirePermission);
      const { userId, scope } = requireSubject(request.userId, request.scope);
      return { allowed: await checks.areAllowed(userId, scope, permissions) };
    },

    async listEffectivePermissions(request) {
      const { userId, scope } = requireSubject(request.userId, request.scope);
      return { permissions: await checks.effectivePermissions(userId, scope) };
    },

    async batchListEffectivePermissions(request) {
      const userIds = requireBatch('userIds', request.userIds);
      for (const userId of userIds) requireSubject(userId, request.scope);
      const permissions = await checks.effectivePermissionsOf(userIds, request.scope);
      return {
        users: userIds.map((userId, index) => ({ userId, permissions: permissions[index] ?? [] })),
      };
    },

    async listPermissions() {
      return { permissions: await roles.listPermissions() };
    },

    async listRoles() {
      return { roles: (await roles.listRoles()).map(toRole) };
    },

    async batchGetRoles(request) {
      const ids = requireBatch('ids', request.ids).filter((id) => isUuid(id));
      return { roles: (await roles.getRoles(ids)).map(toRole) };
    },

    async createRole(request) {
      const role = await roles.createRole(actorOf(request.actorId), {
        name: requireName(request.name),
        description: requireDescription(request.description),
        permissions: requireGrantable(request.permissions),
        inherits: requireParentIds(request.inherits),
      });
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
      return { role: toRole(role) };
    },

    async deleteRole(request) {
      requireId('id', request.id);
      await roles.deleteRole(actorOf(request.actorId), request.id);
      return {};
    },

    async setRoleMfaRequirement(request) {
      requireId('id', request.id);
      const role = await roles.setMfaRequirement(actorOf(request.actorId), request.id, {
        required: request.required,
        gracePeriodSeconds: requireGracePeriod(request.gracePeriodSeconds),
      });
      return { role: toRole(role) };
    },

    async assignRole(request) {
      const scope = requireScope(request.scope);
      if (request.roleId) requireId('roleId', request.roleId);
      else if (!request.roleName) throw AppError.badInput('roleId', 'is required');
      const actor = actorOf(request.actorId);
      const changed = await assignments.assign(
        actor,
        requireId('userId', request.userId),
        request.roleId ? { id: request.roleId } : { name: request.roleName },
        scope,
      );
      return { changed };
    },

    async unassignRole(request) {
      const scope = requireScope(request.scope);
      requireId('userId', request.userId);
      requireId('roleId', request.roleId);
      const changed = await assignments.unassign(
        actorOf(request.actorId),
        request.userId,
        request.roleId,
        scope,
      );
      return { changed };
    },

    async listAssignments(request) {
      const userId = requireId('userId', request.userId);
      const byUser = await assignments.listAssignments([userId]);
      return { assignments: (byUser.get(userId) ?? []).map(toAssignment) };
    },

    async batchListAssignments(request) {
      const userIds = requireBatch('userIds', request.userIds);
      for (const userId of userIds) requireId('userIds', userId);
      const byUser = await assignments.listAssignments(userIds);
      return {
        users: userIds.map((userId) => ({
          userId,
          assignments: (byUser.get(userId) ?? []).map(toAssignment),
        })),
      };
    },

    async batchGetUserAccess(request) {
      const userIds = requireBatch('userIds', request.userIds);
      for (const userId of userIds) requireId('userIds', userId);
      const scope = requireScope(request.scope);
      const [byUser, permissions] = await Promise.all([
        assignments.listAssignments(userIds),
        request.withPermissions ? checks.effectivePermissionsOf(userIds, scope) : undefined,
      ]);
      const roles = new Map<string, permissionV1.Role>();
      const users = userIds.map((userId, index) => ({
        userId,
        assignments: (byUser.get(userId) ?? []).map((assignment) => {
          if (!roles.has(assignment.role.id))
            roles.set(assignment.role.id, toRole(assignment.role));
          return {
            roleId: assignment.role.id,
            scope: assignment.scope,
            assignedAt: assignment.assignedAt,
            ...toStanding(assignment.mfa),
          };
        }),
        permissions: permissions?.[index] ?? [],
      }));
      return { users, roles: [...roles.values()] };
    },

    async beginUserChange(request) {
      const token = await userChanges.begin(
        actorOf(request.actorId),
        requireId('userId', request.userId),
        requireUserChange(request.change),
      );
      return { token };
    },

    async endUserChange(request) {
      if (request.token) requireId('token', request.token);
      await userChanges.end(
        actorOf(request.actorId),
        requireId('userId', request.userId),
        requireUserChange(request.change),
        request.token,
        request.done,
      );
      return {};
    },

    async listAuditEntries(request) {
      const first = request.first;
      if (!Number.isInteger(first) || first < 1 || first > 100)
        throw AppError.badInput('first', 'must be between 1 and 100');
      const after = request.after ? decodeSequenceCursor(AUDIT_CURSOR, request.after) : null;
      const page = await audit.listEntries(first, after);
      return {
        entries: page.entries.map((row) => ({
          id: row.id,
          cursor: encodeSequenceCursor(AUDIT_CURSOR, row.seq),
          actorId: row.actorId ?? '',
          action: row.action,
          target: row.target,
          details: (row.details ?? undefined) as Record<string, unknown> | undefined,
          createdAt: row.createdAt,
        })),
        hasNextPage: page.hasNextPage,
      };
    },
  };
}
