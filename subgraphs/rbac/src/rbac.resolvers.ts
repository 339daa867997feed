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
  /** Users' assignments and effective permissions, one BatchGetUserAccess call per tick. */
  access: UserAccessLoader;
}

/** A user's role assignment, its role resolved. */
export interface AssignedRole extends Omit<permissionV1.RoleAssignment, 'roleId'> {
  role: permissionV1.Role;
}

/** What `User.roles` and `User.permissions` read. */
export interface UserAccessLoader {
  assignments(userId: string): Promise<AssignedRole[]>;
  /** The user's effective permissions in `scope` ("" global). */
  permissions(userId: string, scope: string): Promise<string[]>;
}

/** A user's assignments (no scope), or their effective permissions in a scope. */
type AccessKey = { userId: string; scope?: string };

/**
 * The reads of users' roles and permissions that a request makes in one tick go out as one
 * BatchGetUserAccess (one per further scope of permissions asked), e.g. `me { roles
 * permissions }` or a page of users with their roles.
 */
export function createUserAccessLoader(client: PermissionClient): UserAccessLoader {
  const loader = new DataLoader<AccessKey, AssignedRole[] | string[], string>(
    async (keys) => {
      const rolesOf = [...new Set(keys.filter((k) => k.scope === undefined).map((k) => k.userId))];
      const byScope = new Map<string, Set<string>>();
      for (const { userId, scope } of keys)
        if (scope !== undefined) byScope.set(scope, (byScope.get(scope) ?? new Set()).add(userId));
      // The assignments ride with the first scope's permissions (or alone).
      const calls: { userIds: string[]; scope: string; withPermissions: boolean }[] = [];
      const [first, ...others] = [...byScope];
      calls.push({
        userIds: [...new Set([...rolesOf, ...(first?.[1] ?? [])])],
        scope: first?.[0] ?? '',
        withPermissions: first !== undefined,
      });
      for (const [scope, userIds] of others)
        calls.push({ userIds: [...userIds], scope, withPermissions: true });
      const assignments = new Map<string, AssignedRole[]>();
      const permissions = new Map<string, string[]>();
      await Promise.all(
        calls.map(async (call, index) => {
          if (call.userIds.length === 0) return;
          const answer = await client.batchGetUserAccess(call);
          const roles = new Map(answer.roles.map((role) => [role.id, role]));
          for (const user of answer.users) {
            if (call.withPermissions)
              permissions.set(`${call.scope}|${user.userId}`, user.permissions);
            if (index > 0) continue;
            assignments.set(
              user.userId,
              user.assignments.flatMap(({ roleId, ...assignment }) => {
                const role = roles.get(roleId);
                return role ? [{ ...assignment, role }] : [];
              }),
            );
          }
        }),
      );
      return keys.map(
        ({ userId, scope }) =>
          (scope === undefined ? assignments.get(userId) : permissions.get(`${scope}|${userId}`)) ??
          new Error('user missing from the answer'),
      );
    },
    {
      maxBatchSize: 100,
      cacheKeyFn: ({ userId, scope }) => (scope === undefined ? userId : `${scope}|${userId}`),
    },
  );
  return {
    async assignments(userId) {
      return (await loader.load({ userId })) as AssignedRole[];
    },
    async permissions(userId, scope) {
      return (await loader.load({ userId, scope })) as string[];
    },
  };
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
    async setRoleMfaRequirement(
      _: unknown,
      args: { id: string; required: boolean; gracePeriodSeconds: number },
      context: RbacContext,
    ) {
      const viewer = await context.authz.require(PERMISSIONS['roles:manage']);
      const { role } = await context.permissions.setRoleMfaRequirement({
        actorId: viewer.userId,
        id: requireId('id', args.id),
        required: args.required,
        gracePeriodSeconds: args.gracePeriodSeconds,
      });
      return role;
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
      const viewer = await context.authz.requireSelfOr(user.id, PERMISSIONS['roles:read']);
      // How the MFA policy stands on the assignments tells whether the user has a second
      // factor: like User.mfaEnrolled, only for themself or a holder of users:read (roles:read
      // alone shows what roles they hold). Others read the values of "nothing pending" (the
      // fields are non-null in the contract).
      const seesMfa =
        viewer.userId === user.id || (await context.authz.can(PERMISSIONS['users:read']));
      const assignments = await context.access.assignments(user.id);
      return assignments.map((assignment) => ({
        role: assignment.role,
        scope: assignment.scope || null,
        assignedAt: assignment.assignedAt,
        mfaPending: seesMfa && assignment.mfaPending,
        mfaGraceEndsAt: seesMfa ? (assignment.mfaGraceEndsAt ?? null) : null,
        withheldPermissions: seesMfa ? assignment.withheldPermissions : [],
      }));
    },
    async permissions(
      user: { id: string },
      args: { scope?: string | null },
      context: RbacContext,
    ): Promise<string[]> {
      await context.authz.requireSelfOr(user.id, PERMISSIONS['roles:read']);
      return context.access.permissions(user.id, validScope(args.scope));
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
