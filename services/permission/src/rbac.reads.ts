import { BoundedMap } from '@platform/collections';
import { cacheMetrics } from '@platform/metrics';
import type { AssignmentRow } from './assignment.repository';
import type { PermissionCache } from './permission.cache';
import type { RbacRepositories } from './rbac.store';
import type { RoleGraph } from './role.graph';

/**
 * The reads every page makes (the role graph, users' assignments), from this process's memory
 * while they are current, else from PostgreSQL.
 *
 * Current means read under the versions Redis holds now (PermissionCache.versions, one round
 * trip per call): any role change replaces the graph's version (and, unless it only added a
 * role, every user's), any change of a user's assignments the user's, inside the change's
 * transaction and again once it committed. So, as
 * for effective permissions, no read that starts after a change returned, on any instance, can
 * see what was remembered before it; what a read between the two replacements remembers is
 * forgotten by the second.
 */
export interface RbacReads {
  /** The role hierarchy as it is now. */
  graph(): Promise<RoleGraph>;
  /** The graph, and each user's assignments (oldest first), as they are now. */
  assignments(userIds: readonly string[]): Promise<{ graph: RoleGraph; rows: AssignmentRow[] }>;
}

const graphMetrics = cacheMetrics('role_graph_local');
const assignmentMetrics = cacheMetrics('assignments_local');

export function createRbacReads(deps: {
  store: Pick<RbacRepositories, 'roles' | 'assignments'>;
  cache: Pick<PermissionCache, 'versions'>;
  /** How many users' assignments to remember. */
  localEntries?: number;
}): RbacReads {
  const { store, cache } = deps;
  let graphAt: { version: string; graph: Promise<RoleGraph> } | undefined;
  const rowsOf = new BoundedMap<string, { version: string; rows: AssignmentRow[] }>(
    deps.localEntries ?? 10_000,
  );

  /** One load per version, shared by the reads that ask for it meanwhile. */
  function graphAtVersion(version: string): Promise<RoleGraph> {
    if (graphAt?.version === version) {
      graphMetrics.hit();
      return graphAt.graph;
    }
    graphMetrics.miss();
    const loading = store.roles.loadGraph();
    const entry = { version, graph: loading };
    graphAt = entry;
    // A failed load is not remembered.
    loading.catch(() => {
      if (graphAt === entry) graphAt = undefined;
    });
    return loading;
  }

  return {
    async graph() {
      return graphAtVersion((await cache.versions([])).graph);
    },

    async assignments(requested) {
      const userIds = [...new Set(requested)];
      const versions = await cache.versions(userIds);
      const missing = userIds.filter((userId) => {
        const held = rowsOf.get(userId);
        return held === undefined || held.version !== versions.users.get(userId);
      });
      const [graph, loaded] = await Promise.all([
        graphAtVersion(versions.graph),
        missing.length > 0 ? store.assignments.listForUsers(missing) : [],
      ]);
      assignmentMetrics.hit(userIds.length - missing.length);
      assignmentMetrics.miss(missing.length);
      const fresh = new Map<string, AssignmentRow[]>(missing.map((userId) => [userId, []]));
      for (const row of loaded) fresh.get(row.userId)?.push(row);
      for (const [userId, rows] of fresh) {
        const version = versions.users.get(userId);
        if (version !== undefined) rowsOf.set(userId, { version, rows });
      }
      const rows = userIds.flatMap((userId) => fresh.get(userId) ?? rowsOf.get(userId)?.rows ?? []);
      // A role newer than the graph (written behind the service's back): read the graph again.
      if (rows.some((row) => !graph.get(row.roleId))) {
        graphMetrics.miss();
        const reloaded = await store.roles.loadGraph();
        graphAt = { version: versions.graph, graph: Promise.resolve(reloaded) };
        return { graph: reloaded, rows };
      }
      return { graph, rows };
    },
  };
}
