import { AppError } from '@platform/errors';
import { uncovered } from '@platform/permissions';
import type { PermissionCheckService } from './permission-check.service';

/** Who makes a change. */
export interface Actor {
  /** Null: the platform itself (registration's default role, the bootstrap admin). */
  id: string | null;
}

/** The platform's own changes: the rules about actors do not bind it. */
export const PLATFORM: Actor = Object.freeze({ id: null });

/**
 * The rules about the acting user, checked by every use case that changes roles or
 * assignments: what they may grant. Rules of the same kind (whom they may act on, when they
 * must have re-authenticated or passed MFA) belong here too.
 */
export interface ActorPolicy {
  /**
   * No escalation: FORBIDDEN unless the actor's own permissions in `scope` cover every one of
   * `granted` (only a holder of `*` can grant `*`). Called inside the change's transaction.
   */
  requireMayGrant(actor: Actor, granted: readonly string[], scope: string): Promise<void>;
}

export function createActorPolicy(deps: {
  checks: Pick<PermissionCheckService, 'effectivePermissions'>;
}): ActorPolicy {
  return {
    async requireMayGrant(actor, granted, scope) {
      if (actor.id === null) return;
      const missing = uncovered(await deps.checks.effectivePermissions(actor.id, scope), granted);
      if (missing.length > 0)
        throw AppError.forbidden(`You cannot grant what you do not hold: ${missing.join(', ')}`);
    },
  };
}
