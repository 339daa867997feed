import DataLoader from 'dataloader';
import { AppError } from '@platform/errors';
import type { GrpcClient } from '@platform/grpc';
import { isValidPermission, PERMISSIONS, SCOPE } from '@platform/permissions';
import type { permissionV1 } from '@platform/proto';
import {
  DateTimeScalar,
  JSONScalar,
  requireViewer,
  type SubgraphContext,
} from '@platform/subgraph';
import { requireId } from '@platform/validation';

type PermissionClient = GrpcClient<typeof permissionV1.PermissionServiceService>;

export interface RbacContext extends SubgraphContext {
  permissions: PermissionClient;
  /** Roles by id, one BatchGetRoles call per tick. */
  roles: DataLoader<string, permissionV1.Role | null>;
  /** Users' role assignments, one BatchListAssignments call per tick. */
  assignments: DataLoader<string, permissionV1.Assignment[]>;
  /** Users' effective permissions by `{ userId, scope }`, one call per scope and tick. */
  effectivePermissions: DataLoader<{ userId: string; scope: string }, string[], string>;
}

export function createEffectivePermissionsLoader(
  client: PermissionClient,
): RbacContext['effectivePermissions'] {
  return new DataLoader(
    async (keys) => {
      const byScope = new Map<string, string[]>();
      for (const { userId, scope } of keys)
        byScope.set(scope, [...(byScope.get(scope) ?? []), userId]);
      const answers = new Map<string, string[]>();
      await Promise.all(
        [...byScope].map(async ([scope, userIds]) => {
          const { users } = await client.batchListEffectivePermissions({ userIds, scope });
          for (const user of users) answers.set(`${scope}|${user.userId}`, user.permissions);
        }),
      );
      return keys.map(
        ({ userId, scope }) =>
          answers.get(`${scope}|${userId}`) ?? new Error('permissions missing from the answer'),
      );
    },
    { maxBatchSize: 100, cacheKeyFn: ({ userId, scope }) => `${scope}|${userId}` },
  );
}

export function createAssignmentLoader(client: PermissionClient): RbacContext['assignments'] {
  return new DataLoader(
    async (userIds) => {
      const { users } = await client.batchListAssignments({ userIds: [...userIds] });
      return users.map((user) => user.assignments);
    },
    { maxBatchSize: 100 },
  );
}

export function createRoleLoader(client: PermissionClient): RbacContext['roles'] {
  return new DataLoader(async (ids) => {
    const { roles } = await client.batchGetRoles({ ids: [...ids] });
    const byId = new Map(roles.map((role) => [role.id, role]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

/** null/absent = global (''), otherwise a well-formed scope. */
function validScope(scope: string | null | undefined): string {
  if (scope == null) return '';
  if (!SCOPE.test(scope))
    throw AppError.badInput('scope', 'must be 1-200 letters, digits or _.:- (or null for global)');
  return scope;
}

interface RoleInput {
  name?: string | null;
  description?: string | null;
  permissions?: string[] | null;
  inherits?: string[] | null;
}

interface AssignmentArgs {
  userId: string;
  roleId: string;
  scope?: string | null;
}

/** An assignment change's arguments, checked, by a viewer who may assign roles in its scope. */
async function assignmentChange(args: AssignmentArgs, context: RbacContext) {
  const scope = validScope(args.scope);
  const viewer = await context.authz.require(PERMISSIONS['roles:assign'], scope);
  return {
    actorId: viewer.userId,
    userId: requireId('userId', args.userId),
    roleId: requireId('roleId', args.roleId),
    scope,
  };
}

export const rbacResolvers = {
  DateTime: DateTimeScalar,
  JSON: JSONScalar,

  Query: {
    async roles(_: unknown, __: unknown, context: RbacContext) {
      await context.authz.require(PERMISSIONS['roles:read']);
      return (await context.permissions.listRoles({})).roles;
    },
    async role(_: unknown, args: { id: string }, context: RbacContext) {
      await context.authz.require(PERMISSIONS['roles:read']);
      return context.roles.load(requireId('id', args.id));
    },
    async permissions(_: unknown, __: unknown, context: RbacContext) {
      await context.authz.require(PERMISSIONS['roles:read']);
      return (await context.permissions.listPermissions({})).permissions;
    },
    async hasPermission(
      _: unknown,
      args: { permission: string; scope?: string | null },
      context: RbacContext,
    ): Promise<boolean> {
      requireViewer(context);
      if (!isValidPermission(args.permission))
        throw AppError.badInput('permission', 'must look like resource:action');
      return context.authz.can(args.permission, validScope(args.scope));
    },
    async auditLog(
      _: unknown,
      args: { first: number; after?: string | null },
      context: RbacContext,
    ) {
      await context.authz.require(PERMISSIONS['audit:read']);
      if (args.first < 1 || args.first > 100)
        throw AppError.badInput('first', 'must be between 1 and 100');
      const page = await context.permissions.listAuditEntries({
        first: args.first,
        after: args.after ?? '',
      });
      return {
        edges: page.entries.map((entry) => ({ cursor: entry.cursor, node: entry })),
        pageInfo: {
          hasNextPage: page.hasNextPage,
          endCursor: page.entries.at(-1)?.cursor ?? null,
        },
      };
    },
  },

  Mutation: {
    async createRole(_: unknown, { input }: { input: RoleInput }, context: RbacContext) {
      const viewer = await context.authz.require(PERMISSIONS['roles:manage']);
      const { role } = await context.permissions.createRole({
        actorId: viewer.userId,
        name: input.name ?? '',
        description: input.description ?? undefined,
        permissions: input.permissions ?? [],
        inherits: input.inherits ?? [],
      });
      return role;
    },
    async updateRole(
      _: unknown,
      { id, input }: { id: string; input: RoleInput },
      context: RbacContext,
    ) {
      const viewer = await context.authz.require(PERMISSIONS['roles:manage']);
      if (input.name === null) throw AppError.badInput('name', 'cannot be null');
      const { role } = await context.permissions.updateRole({
        actorId: viewer.userId,
        id: requireId('id', id),
        name: input.name,
        // null clears the description; absent leaves it.
        description: input.description === null ? '' : input.description,
        permissions: input.permissions == null ? undefined : { values: input.permissions },
        inherits: input.inherits == null ? undefined : { values: input.inherits },
      });
      return role;
    },
    async deleteRole(_: unknown, { id }: { id: string }, context: RbacContext) {
      const viewer = await context.authz.require(PERMISSIONS['roles:manage']);
      await context.permissions.deleteRole({ actorId: viewer.userId, id: requireId('id', id) });
      return true;
    },
    async assignRole(_: unknown, args: AssignmentArgs, context: RbacContext) {
      await context.permissions.assignRole({
        ...(await assignmentChange(args, context)),
        roleName: '',
      });
      return true;
    },
    async unassignRole(_: unknown, args: AssignmentArgs, context: RbacContext) {
      await context.permissions.unassignRole(await assignmentChange(args, context));
      return true;
    },
  },

  User: {
    async roles(user: { id: string }, _: unknown, context: RbacContext) {
      await context.authz.requireSelfOr(user.id, PERMISSIONS['roles:read']);
      const assignments = await context.assignments.load(user.id);
      return assignments.map((assignment) => ({
        role: assignment.role,
        scope: assignment.scope || null,
        assignedAt: assignment.assignedAt,
      }));
    },
    async permissions(
      user: { id: string },
      args: { scope?: string | null },
      context: RbacContext,
    ): Promise<string[]> {
      await context.authz.requireSelfOr(user.id, PERMISSIONS['roles:read']);
      return context.effectivePermissions.load({ userId: user.id, scope: validScope(args.scope) });
    },
  },

  Role: {
    async inherits(role: permissionV1.Role, _: unknown, context: RbacContext) {
      const parents = await context.roles.loadMany(role.inherits);
      return parents.flatMap((parent) => {
        if (parent instanceof Error) throw parent;
        return parent ? [parent] : [];
      });
    },
  },

  AuditEntry: {
    // Another user, with their email, only for those who may read users (audit:read alone
    // does not make a caller a directory of who administers the platform).
    async actor(entry: permissionV1.AuditEntry, _: unknown, context: RbacContext) {
      if (!entry.actorId) return null;
      const self = context.viewer?.userId === entry.actorId;
      if (!self && !(await context.authz.can(PERMISSIONS['users:read']))) return null;
      return { __typename: 'User', id: entry.actorId };
    },
  },
};
