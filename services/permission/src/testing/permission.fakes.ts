// Test-only: in-memory stand-ins for the permission service's repositories, cache and user
// directory, typed by the interfaces the use cases depend on. They keep the database's
// guarantees the use cases rely on (unique names, cascades, all-or-nothing transactions).
import { randomUUID } from 'node:crypto';
import { AppError } from '@platform/errors';
import type { EventEnvelope } from '@platform/events';
import { createActorPolicy } from '../actor.policy';
import type { AssignmentRepository, AssignmentRow } from '../assignment.repository';
import { createAssignmentService } from '../assignment.service';
import type { AuditRepository, AuditRow } from '../audit.repository';
import { createAuditService } from '../audit.service';
import type { CacheEntry, PermissionCache } from '../permission.cache';
import { createPermissionCheckService } from '../permission-check.service';
import { createRbacReads } from '../rbac.reads';
import type { RbacStore, RbacTransaction } from '../rbac.store';
import { RoleGraph, type RoleNode } from '../role.graph';
import type { RoleRepository } from '../role.repository';
import { createRoleService } from '../role.service';
import { createLastAdminRule } from '../last-admin.rule';
import { LEAVING_TTL_MS, type LeavingRepository } from '../leaving.repository';
import { NO_MFA_REQUIREMENT } from '../mfa.policy';
import type { MfaDirectory } from '../mfa.directory';
import type { MfaStateRepository, MfaStateRow } from '../mfa-state.repository';
import { createMfaStates } from '../mfa-state.service';
import type { UserDirectory } from '../user.directory';
import { createUserChangeService } from '../user-change.service';

/** What the fake database holds; tests read it to see what a use case wrote. */
export interface FakeRbacData {
  roles: RoleNode[];
  catalogue: Record<string, string>;
  assignments: AssignmentRow[];
  audit: AuditRow[];
  /** Events written to the outbox, in order. */
  outbox: EventEnvelope[];
  /** `consumer|eventId` of the events consumed. */
  processed: string[];
  /** The users marked leaving: one mark per removal, until `expiresAt` (ms). */
  leaving: { token: string; userId: string; expiresAt: number }[];
  /** The projection of users' second factors, by user id. */
  mfaStates: Record<string, MfaStateRow>;
}

export interface FakeRbacStore extends RbacStore {
  data: FakeRbacData;
  /** Times the outbox relay was woken. */
  relayKicks: number;
  /** Transactions that committed. */
  commits: number;
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

function fakeRoles(data: FakeRbacData): RoleRepository {
  const find = (id: string): RoleNode => {
    const role = data.roles.find((candidate) => candidate.id === id);
    if (!role) throw new Error(`fake: no role ${id}`);
    return role;
  };
  const requireFreeName = (name: string, id?: string) => {
    if (data.roles.some((role) => role.name === name && role.id !== id))
      throw new Error(`fake: unique constraint on roles.name (${name})`);
  };
  return {
    async lockGraph() {},
    async holdRole(id) {
      return data.roles.some((role) => role.id === id);
    },
    async takeForDeletion() {
      // One caller at a time in memory: nothing to wait for.
    },
    async loadGraph() {
      return new RoleGraph(structuredClone(data.roles));
    },
    async findByName(name) {
      return structuredClone(data.roles.find((role) => role.name === name) ?? null);
    },
    async create(input) {
      requireFreeName(input.name);
      const role: RoleNode = {
        id: randomUUID(),
        name: input.name,
        description: input.description,
        system: input.system ?? false,
        permissions: [...input.permissions].sort(),
        inherits: [...input.inherits].sort(),
        mfa: { ...NO_MFA_REQUIREMENT },
      };
      data.roles.push(role);
      return structuredClone(role);
    },
    async rename(id, { name, description }) {
      requireFreeName(name, id);
      Object.assign(find(id), { name, description });
    },
    async addPermissions(id, permissions) {
      const role = find(id);
      role.permissions = [...role.permissions, ...permissions].sort();
    },
    async removePermissions(id, permissions) {
      const role = find(id);
      role.permissions = role.permissions.filter((p) => !permissions.includes(p));
    },
    async replaceParents(id, parentIds) {
      find(id).inherits = [...parentIds].sort();
    },
    async setMfaRequirement(id, requirement) {
      find(id).mfa = { ...requirement };
    },
    async childIds(id) {
      return data.roles.filter((role) => role.inherits.includes(id)).map((role) => role.id);
    },
    async delete(id) {
      find(id);
      data.roles = data.roles.filter((role) => role.id !== id);
      for (const role of data.roles) role.inherits = role.inherits.filter((p) => p !== id);
      data.assignments = data.assignments.filter((a) => a.roleId !== id);
    },
    async markSystem(name) {
      const role = data.roles.find((candidate) => candidate.name === name);
      if (role) role.system = true;
    },
    async upsertPermission(name, description) {
      data.catalogue[name] = description;
    },
    async listPermissions() {
      return Object.entries(data.catalogue)
        .map(([name, description]) => ({ name, description }))
        .sort(byName);
    },
  };
}

function fakeAssignments(data: FakeRbacData): AssignmentRepository {
  const same = (a: AssignmentRow, b: { userId: string; roleId: string; scope: string }) =>
    a.userId === b.userId && a.roleId === b.roleId && a.scope === b.scope;
  const named = (roleName: string) => data.roles.find((role) => role.name === roleName)?.id;
  return {
    async insert(key) {
      if (data.assignments.some((row) => same(row, key))) return false;
      // A clock that always moves on, so "oldest first" is the order of insertion.
      const last = Math.max(0, ...data.assignments.map((row) => row.assignedAt.getTime()));
      data.assignments.push({ ...key, assignedAt: new Date(Math.max(Date.now(), last + 1)) });
      return true;
    },
    async delete(key) {
      const before = data.assignments.length;
      data.assignments = data.assignments.filter((row) => !same(row, key));
      return data.assignments.length < before;
    },
    async listForUsers(userIds) {
      return data.assignments
        .filter((row) => userIds.includes(row.userId))
        .sort(
          (a, b) =>
            a.assignedAt.getTime() - b.assignedAt.getTime() || a.roleId.localeCompare(b.roleId),
        )
        .map((row) => ({ ...row }));
    },
    async deleteForUser(userId) {
      data.assignments = data.assignments.filter((row) => row.userId !== userId);
    },
    async countForRole(roleId) {
      return data.assignments.filter((row) => row.roleId === roleId).length;
    },
    async holds(userId, roleName, scope) {
      return data.assignments.some((row) =>
        same(row, { userId, roleId: named(roleName) ?? '', scope }),
      );
    },
    async holderIds(roleName, scope, exceptUserId) {
      return data.assignments
        .filter((row) => row.roleId === named(roleName) && row.scope === scope)
        .filter((row) => row.userId !== exceptUserId)
        .map((row) => row.userId);
    },
  };
}

function fakeAudit(data: FakeRbacData): AuditRepository {
  return {
    async append(record) {
      const seq = BigInt(data.audit.length + 1);
      data.audit.push({ id: randomUUID(), seq, createdAt: new Date(), ...record });
    },
    async list(limit, beforeSeq) {
      return data.audit
        .filter((row) => beforeSeq === null || row.seq < beforeSeq)
        .sort((a, b) => Number(b.seq - a.seq))
        .slice(0, limit);
    },
  };
}

function fakeLeaving(data: FakeRbacData): LeavingRepository {
  return {
    async mark(userId) {
      const token = randomUUID();
      data.leaving = data.leaving.filter((mark) => mark.expiresAt > Date.now());
      data.leaving.push({ token, userId, expiresAt: Date.now() + LEAVING_TTL_MS });
      return token;
    },
    async clear(token) {
      data.leaving = data.leaving.filter((mark) => mark.token !== token);
    },
    async among(userIds) {
      const marked = new Set(
        data.leaving.filter((mark) => mark.expiresAt > Date.now()).map((mark) => mark.userId),
      );
      return new Set(userIds.filter((id) => marked.has(id)));
    },
  };
}

function fakeMfaStates(data: FakeRbacData): MfaStateRepository {
  return {
    async find(userId) {
      const row = data.mfaStates[userId];
      return row ? { ...row } : null;
    },
    async findMany(userIds) {
      return new Map(
        userIds.flatMap((userId) => {
          const row = data.mfaStates[userId];
          return row ? [[userId, { ...row }] as const] : [];
        }),
      );
    },
    async saveIfNewer(userId, state) {
      const stored = data.mfaStates[userId];
      if (stored && stored.version !== 0 && stored.version >= state.version) return false;
      data.mfaStates[userId] = { ...state };
      return true;
    },
  };
}

/**
 * An in-memory store. A transaction works on a copy that replaces the data when it commits, so
 * one that throws leaves the data as it was (transactions are not meant to overlap here).
 */
export function createFakeRbacStore(): FakeRbacStore {
  const store: FakeRbacStore = {
    data: {
      roles: [],
      catalogue: {},
      assignments: [],
      audit: [],
      outbox: [],
      processed: [],
      leaving: [],
      mfaStates: {},
    },
    relayKicks: 0,
    commits: 0,
    get roles() {
      return fakeRoles(store.data);
    },
    get assignments() {
      return fakeAssignments(store.data);
    },
    get audit() {
      return fakeAudit(store.data);
    },
    get leaving() {
      return fakeLeaving(store.data);
    },
    get mfaStates() {
      return fakeMfaStates(store.data);
    },
    async transaction<T>(work: (tx: RbacTransaction) => Promise<T>): Promise<T> {
      const committed = store.data;
      const data = structuredClone(committed);
      const result = await work({
        roles: fakeRoles(data),
        assignments: fakeAssignments(data),
        audit: fakeAudit(data),
        leaving: fakeLeaving(data),
        mfaStates: fakeMfaStates(data),
        outbox: {
          async enqueue(event) {
            data.outbox.push(event);
          },
          async processOnce(consumer, eventId) {
            const key = `${consumer}|${eventId}`;
            if (data.processed.includes(key)) return false;
            data.processed.push(key);
            return true;
          },
        },
      });
      const wroteEvent = data.outbox.length > committed.outbox.length;
      Object.assign(committed, data);
      store.commits++;
      if (wroteEvent) store.relayKicks++;
      return result;
    },
  };
  return store;
}

export interface FakePermissionCache extends PermissionCache {
  /** Users whose entries were forgotten, in order. */
  forgottenUsers: string[];
  /** Times every user's entries were forgotten. */
  rolesForgotten: number;
  /** When set, forgetting fails as it does while Redis is unreachable. */
  failing: boolean;
}

/**
 * Remembers loads until told to forget or until their `validUntil` (by `clock`), like the real
 * cache (without Redis).
 */
export function createFakePermissionCache(
  clock: () => Date = () => new Date(),
): FakePermissionCache {
  const entries = new Map<string, CacheEntry>();
  // Like the real cache's versions: each forget replaces them (tests may clear the lists above).
  const versions = { roles: 0, graph: 0, users: new Map<string, number>() };
  const cache: FakePermissionCache = {
    forgottenUsers: [],
    rolesForgotten: 0,
    failing: false,
    async get(userId, scope, load) {
      const key = `${userId}|${scope}`;
      const hit = entries.get(key);
      const now = clock().getTime();
      if (hit && (hit.validUntil === null || hit.validUntil.getTime() > now))
        return hit.permissions;
      const loaded = await load();
      if (loaded.validUntil === null || loaded.validUntil.getTime() > now) entries.set(key, loaded);
      return loaded.permissions;
    },
    async getMany(userIds, scope, load) {
      return Promise.all(userIds.map((userId) => cache.get(userId, scope, () => load(userId))));
    },
    async versions(userIds) {
      const roles = `roles.${versions.roles}`;
      return {
        graph: `graph.${versions.graph}`,
        users: new Map(
          userIds.map((userId) => [userId, `${roles}.${versions.users.get(userId) ?? 0}`]),
        ),
      };
    },
    async forgetRoleGraph() {
      if (cache.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      versions.graph++;
    },
    async forgetUser(userId) {
      if (cache.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      versions.users.set(userId, (versions.users.get(userId) ?? 0) + 1);
      cache.forgottenUsers.push(userId);
      for (const key of entries.keys()) if (key.startsWith(`${userId}|`)) entries.delete(key);
    },
    async forgetRoles() {
      if (cache.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      cache.rolesForgotten++;
      versions.roles++;
      versions.graph++;
      entries.clear();
    },
  };
  return cache;
}

/** Users by id and whether they are active; an unknown id is NOT_FOUND, like the user service. */
export function createFakeUserDirectory(
  users: Map<string, 'active' | 'disabled'> = new Map(),
): UserDirectory & { users: Map<string, 'active' | 'disabled'> } {
  return {
    users,
    async requireExists(userId) {
      if (!users.has(userId)) throw AppError.notFound('User');
    },
    async anyActive(userIds) {
      return userIds.some((id) => users.get(id) === 'active');
    },
  };
}

/**
 * The auth service's answers about second factors, by user id (absent: none, version 0);
 * `failing` makes it unreachable. `calls`: GetMfaStatus calls; `asked`: the user ids of each.
 */
export function createFakeMfaDirectory(): MfaDirectory & {
  states: Map<string, MfaStateRow>;
  failing: boolean;
  calls: number;
  asked: string[][];
} {
  const directory = {
    states: new Map<string, MfaStateRow>(),
    failing: false,
    calls: 0,
    asked: [] as string[][],
    async statesOf(userIds: readonly string[]) {
      directory.calls++;
      directory.asked.push([...userIds]);
      if (directory.failing) throw AppError.unavailable('auth service unreachable');
      return new Map(
        userIds.map((userId) => [
          userId,
          { ...(directory.states.get(userId) ?? { enrolled: false, version: 0 }) },
        ]),
      );
    },
  };
  return directory;
}

/** A clock tests move by hand. */
export function createTestClock(start = Date.now()) {
  let now = start;
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };
}

/** The use cases over the fakes: what a unit test of one of them needs around it. */
export function createFakePermissionServices(options: { clock?: () => Date } = {}) {
  const clock = options.clock ?? (() => new Date());
  const store = createFakeRbacStore();
  const cache = createFakePermissionCache(clock);
  const users = createFakeUserDirectory();
  const directory = createFakeMfaDirectory();
  const reads = createRbacReads({ store, cache });
  const mfa = createMfaStates({ store, cache, directory, logger: { warn() {} } });
  const checks = createPermissionCheckService({ reads, cache, mfa, clock });
  const policy = createActorPolicy({
    checks,
    assignments: store.assignments,
    audit: store.audit,
    mfa,
  });
  const lastAdmin = createLastAdminRule({ users });
  return {
    store,
    cache,
    users,
    directory,
    mfa,
    leaving: store.leaving,
    checks,
    policy,
    roles: createRoleService({ store, reads, policy, cache, clock }),
    assignments: createAssignmentService({
      store,
      reads,
      policy,
      cache,
      users,
      lastAdmin,
      mfa,
      clock,
    }),
    userChanges: createUserChangeService({ store, policy, lastAdmin }),
    audit: createAuditService({ store }),
  };
}
