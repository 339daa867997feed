import type { MfaRequirement } from './mfa.policy';

/** A role as stored: direct permissions and parent role ids. */
export interface RoleNode {
  id: string;
  name: string;
  description: string | null;
  system: boolean;
  permissions: string[];
  inherits: string[];
  /** Whether its permissions need a second factor (mfa.policy.ts). */
  mfa: MfaRequirement;
}

/** A role with what it grants through its ancestors too. */
export interface RoleView extends RoleNode {
  effectivePermissions: string[];
}

/**
 * The role hierarchy in memory (roles are few; users are many). Answers what a role grants
 * through inheritance and whether a change of parents would close a cycle.
 */
export class RoleGraph {
  private readonly byId: Map<string, RoleNode>;
  /** Views of this graph's own roles: a graph is not changed once built, and is shared. */
  private readonly views = new WeakMap<RoleNode, RoleView>();

  constructor(roles: readonly RoleNode[]) {
    this.byId = new Map(roles.map((role) => [role.id, role]));
  }

  get(id: string): RoleNode | undefined {
    return this.byId.get(id);
  }

  /** The role ids `ids` and all their ancestors. */
  ancestry(ids: readonly string[]): Set<string> {
    const seen = new Set<string>();
    const pending = [...ids];
    for (let id = pending.pop(); id !== undefined; id = pending.pop()) {
      if (seen.has(id)) continue;
      seen.add(id);
      pending.push(...(this.byId.get(id)?.inherits ?? []));
    }
    return seen;
  }

  /** What roles with these direct permissions and parents would grant, sorted. */
  grantedBy(permissions: readonly string[], parents: readonly string[]): string[] {
    const granted = new Set(permissions);
    for (const id of this.ancestry(parents))
      for (const permission of this.byId.get(id)?.permissions ?? []) granted.add(permission);
    return [...granted].sort();
  }

  /** Whether giving `roleId` these parents would make it its own ancestor. */
  closesCycle(roleId: string, parents: readonly string[]): boolean {
    return this.ancestry(parents).has(roleId);
  }

  view(role: RoleNode): RoleView {
    const known = this.views.get(role);
    if (known) return known;
    const view = { ...role, effectivePermissions: this.grantedBy(role.permissions, role.inherits) };
    if (this.byId.get(role.id) === role) this.views.set(role, view);
    return view;
  }

  all(): RoleView[] {
    return [...this.byId.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((role) => this.view(role));
  }
}
