import type { Prisma } from '@platform/db';
import type { MfaRequirement } from './mfa.policy';
import { RoleGraph, type RoleNode } from './role.graph';

/** What a role is created with. */
export interface NewRole {
  name: string;
  description: string | null;
  permissions: readonly string[];
  inherits: readonly string[];
  /** A built-in role (never renamed or deleted). */
  system?: boolean;
}

/** The queries on roles, their permissions and parents, and the permission catalogue. */
export interface RoleRepository {
  /**
   * Serialises role-graph and admin changes: held until the transaction ends (they are rare;
   * checks never take it).
   */
  lockGraph(): Promise<void>;
  /**
   * Keeps the role from being deleted until the transaction ends, as a reference to it does
   * (the lock a foreign key takes: renames and other changes go on). False when it is gone,
   * also when a deletion that was under way when asked has committed since.
   */
  holdRole(id: string): Promise<boolean>;
  /**
   * Takes the role for deletion: waits for the assignments being made to it (they hold it, see
   * holdRole) to commit, and holds off new ones until the transaction ends, so that what is
   * counted of it from then on is what goes with it.
   */
  takeForDeletion(id: string): Promise<void>;
  /** Every role, with its direct permissions and parents. */
  loadGraph(): Promise<RoleGraph>;
  findByName(name: string): Promise<RoleNode | null>;
  create(role: NewRole): Promise<RoleNode>;
  /** Sets the name and description. */
  rename(id: string, fields: { name: string; description: string | null }): Promise<void>;
  addPermissions(id: string, permissions: readonly string[]): Promise<void>;
  removePermissions(id: string, permissions: readonly string[]): Promise<void>;
  replaceParents(id: string, parentIds: readonly string[]): Promise<void>;
  /** Sets the role's MFA requirement. */
  setMfaRequirement(id: string, requirement: MfaRequirement): Promise<void>;
  /** The ids of the roles that inherit this one directly. */
  childIds(id: string): Promise<string[]>;
  /** The role goes, and with it its assignments and its place among others' parents. */
  delete(id: string): Promise<void>;
  markSystem(name: string): Promise<void>;
  /** Adds a catalogue entry or updates its description. */
  upsertPermission(name: string, description: string): Promise<void>;
  /** The catalogue, by name. */
  listPermissions(): Promise<{ name: string; description: string }[]>;
}

const ROLE_INCLUDE = { permissions: true, parents: true } as const;
type RoleRow = Prisma.RoleGetPayload<{ include: typeof ROLE_INCLUDE }>;

function toNode(row: RoleRow): RoleNode {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    system: row.system,
    permissions: row.permissions.map((p) => p.permission).sort(),
    inherits: row.parents.map((p) => p.parentId).sort(),
    mfa: {
      required: row.requiresMfa,
      gracePeriodSeconds: row.mfaGraceSeconds,
      requiredSince: row.mfaRequiredSince,
    },
  };
}

/** Queries through `db`: the client, or the transaction client of a change. */
export function createRoleRepository(db: Prisma.TransactionClient): RoleRepository {
  return {
    async lockGraph() {
      await db.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('rbac.roles'))`);
    },

    async holdRole(id) {
      const held = await db.$queryRaw<{ id: string }[]>`
        SELECT id::text FROM "rbac"."roles" WHERE id = ${id}::uuid FOR KEY SHARE`;
      return held.length > 0;
    },

    async takeForDeletion(id) {
      await db.$queryRaw`SELECT 1 FROM "rbac"."roles" WHERE id = ${id}::uuid FOR UPDATE`;
    },

    async loadGraph() {
      const rows = await db.role.findMany({ include: ROLE_INCLUDE });
      return new RoleGraph(rows.map(toNode));
    },

    async findByName(name) {
      const row = await db.role.findUnique({ where: { name }, include: ROLE_INCLUDE });
      return row && toNode(row);
    },

    async create(role) {
      const row = await db.role.create({
        data: {
          name: role.name,
          description: role.description,
          system: role.system ?? false,
          permissions: { create: role.permissions.map((permission) => ({ permission })) },
          parents: { create: role.inherits.map((parentId) => ({ parentId })) },
        },
        include: ROLE_INCLUDE,
      });
      return toNode(row);
    },

    async rename(id, { name, description }) {
      await db.role.update({ where: { id }, data: { name, description } });
    },

    async addPermissions(id, permissions) {
      if (permissions.length === 0) return;
      await db.rolePermission.createMany({
        data: permissions.map((permission) => ({ roleId: id, permission })),
      });
    },

    async removePermissions(id, permissions) {
      if (permissions.length === 0) return;
      await db.rolePermission.deleteMany({
        where: { roleId: id, permission: { in: [...permissions] } },
      });
    },

    async replaceParents(id, parentIds) {
      await db.roleParent.deleteMany({ where: { roleId: id } });
      await db.roleParent.createMany({
        data: parentIds.map((parentId) => ({ roleId: id, parentId })),
      });
    },

    async setMfaRequirement(id, requirement) {
      await db.role.update({
        where: { id },
        data: {
          requiresMfa: requirement.required,
          mfaGraceSeconds: requirement.gracePeriodSeconds,
          mfaRequiredSince: requirement.requiredSince,
        },
      });
    },

    async childIds(id) {
      const rows = await db.roleParent.findMany({ where: { parentId: id } });
      return rows.map((row) => row.roleId);
    },

    async delete(id) {
      // Assignments and parent links go with the role (ON DELETE CASCADE).
      await db.role.delete({ where: { id } });
    },

    async markSystem(name) {
      await db.role.update({ where: { name }, data: { system: true } });
    },

    async upsertPermission(name, description) {
      await db.permissionDefinition.upsert({
        where: { name },
        create: { name, description },
        update: { description },
      });
    },

    async listPermissions() {
      return db.permissionDefinition.findMany({ orderBy: { name: 'asc' } });
    },
  };
}
