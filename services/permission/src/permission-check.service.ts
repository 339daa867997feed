import { isGranted } from '@platform/permissions';
import type { AssignmentRow } from './assignment.repository';
import { assignedScopesOf, grantOf, mfaMatters } from './mfa.policy';
import type { MfaStates } from './mfa-state.service';
import type { CacheEntry, PermissionCache } from './permission.cache';
import type { RbacReads } from './rbac.reads';

/** Answers what users may do, from the cache of each user's effective permissions. */
export interface PermissionCheckService {
  /** Every permission the user holds in `scope` (their global roles' included), sorted. */
  effectivePermissions(userId: string, scope: string): Promise<string[]>;
  /** Several users' effective permissions in `scope`, in the same order. */
  effectivePermissionsOf(userIds: readonly string[], scope: string): Promise<string[][]>;
  /** Whether the user holds `permission` in `scope`, wildcards included. */
  isAllowed(userId: string, scope: string, permission: string): Promise<boolean>;
  /** One answer per permission, in the same order. */
  areAllowed(userId: string, scope: string, permissions: readonly string[]): Promise<boolean[]>;
  /**
   * What the user holds in `scope` as if every MFA grace period had ended: what comes through
   * a role requiring MFA counts only when the user is known to have a second factor (fail
   * closed). What the user may pass on or use to weaken the policy (actor.policy.ts). Not cached.
   */
  permissionsWithoutGrace(userId: string, scope: string): Promise<string[]>;
  /**
   * Everything the user's roles grant in `scope`, as if they had a second factor: how strong
   * a user is, for the rule against acting on a stronger one (an unenrolled admin is still an
   * admin). Not cached.
   */
  fullGrant(userId: string, scope: string): Promise<string[]>;
}

export function createPermissionCheckService(deps: {
  reads: Pick<RbacReads, 'assignments'>;
  cache: Pick<PermissionCache, 'get' | 'getMany'>;
  mfa: Pick<MfaStates, 'enrolment' | 'enrolments'>;
  clock?: () => Date;
}): PermissionCheckService {
  const { reads, cache, mfa } = deps;
  const clock = deps.clock ?? (() => new Date());

  /**
   * What the user's roles grant in `scope` under the MFA policy (mfa.policy.ts). Their second
   * factor is looked up only when a role they reach requires one; an answer that had to assume
   * none because the auth service could not say (fail closed) is not cached.
   */
  async function load(userId: string, scope: string): Promise<CacheEntry> {
    const { graph, rows } = await reads.assignments([userId]);
    const now = clock();
    const assignedScopes = assignedScopesOf(rows);
    if (!mfaMatters(graph, rows)) {
      const { permissions } = grantOf({ graph, assignments: rows, scope, enrolled: true, now });
      return { permissions, validUntil: null, assignedScopes };
    }
    const { enrolled, known } = await mfa.enrolment(userId);
    const grant = grantOf({ graph, assignments: rows, scope, enrolled, now });
    return {
      permissions: grant.permissions,
      validUntil: known ? grant.validUntil : now,
      assignedScopes,
    };
  }

  async function effectivePermissions(userId: string, scope: string): Promise<string[]> {
    return cache.get(userId, scope, () => load(userId, scope));
  }

  /**
   * The loads of several users' entries: the first one the cache misses reads every user's
   * assignments and asks for the second factors of those it matters for at once (one read of
   * the projection, one GetMfaStatus for the users it has no row of, not one per user); the
   * other misses wait for that. Users the cache answered are part of the batch too: a wider
   * read, never more calls.
   */
  function batchedLoad(userIds: readonly string[], scope: string) {
    let batch: Promise<Map<string, CacheEntry>> | undefined;
    const loadAll = async (): Promise<Map<string, CacheEntry>> => {
      const { graph, rows } = await reads.assignments(userIds);
      const now = clock();
      const rowsOf = new Map<string, AssignmentRow[]>(userIds.map((userId) => [userId, []]));
      for (const row of rows) rowsOf.get(row.userId)?.push(row);
      const guarded = [...rowsOf].filter(([, own]) => mfaMatters(graph, own));
      const enrolments = await mfa.enrolments(guarded.map(([userId]) => userId));
      const entries = new Map<string, CacheEntry>();
      for (const [userId, own] of rowsOf) {
        const enrolment = enrolments.get(userId) ?? { enrolled: true, known: true };
        const grant = grantOf({
          graph,
          assignments: own,
          scope,
          enrolled: enrolment.enrolled,
          now,
        });
        entries.set(userId, {
          permissions: grant.permissions,
          validUntil: enrolment.known ? grant.validUntil : now,
          assignedScopes: assignedScopesOf(own),
        });
      }
      return entries;
    };
    return async (userId: string): Promise<CacheEntry> => {
      batch ??= loadAll();
      return (await batch).get(userId) ?? load(userId, scope);
    };
  }

  /** What the user's roles grant in `scope`, with or without the grace periods, uncached. */
  async function grantNow(userId: string, scope: string, mode: 'without-grace' | 'full') {
    const { graph, rows } = await reads.assignments([userId]);
    const now = clock();
    if (mode === 'full' || !mfaMatters(graph, rows))
      return grantOf({ graph, assignments: rows, scope, enrolled: true, now }).permissions;
    const { enrolled, known } = await mfa.enrolment(userId);
    return grantOf({
      graph,
      assignments: rows,
      scope,
      enrolled: enrolled && known,
      now,
      graceOver: true,
    }).permissions;
  }

  return {
    effectivePermissions,
    effectivePermissionsOf(userIds, scope) {
      return cache.getMany(userIds, scope, batchedLoad(userIds, scope));
    },
    permissionsWithoutGrace(userId, scope) {
      return grantNow(userId, scope, 'without-grace');
    },
    fullGrant(userId, scope) {
      return grantNow(userId, scope, 'full');
    },
    async isAllowed(userId, scope, permission) {
      return isGranted(await effectivePermissions(userId, scope), permission);
    },
    async areAllowed(userId, scope, permissions) {
      const granted = await effectivePermissions(userId, scope);
      return permissions.map((permission) => isGranted(granted, permission));
    },
  };
}
