import { AppError } from '@platform/errors';
import { uncovered } from '@platform/permissions';
import type { AssignmentRepository } from './assignment.repository';
import type { AuditRepository } from './audit.repository';
import type { MfaStates } from './mfa-state.service';
import type { PermissionCheckService } from './permission-check.service';

/** `extensions.reason` of a change of the MFA policy refused to an actor without a second factor. */
export const MFA_REQUIRED_TO_CHANGE_POLICY = 'MFA_REQUIRED_TO_CHANGE_POLICY';

/** Who makes a change. */
export interface Actor {
  /** Null: the platform itself (registration's default role, the bootstrap admin). */
  id: string | null;
}

/** The platform's own changes: the rules about actors do not bind it. */
export const PLATFORM: Actor = Object.freeze({ id: null });

/** What a refused actor tried: recorded in the audit log as `access.refused`. */
export interface Attempt {
  /** The action it would have been audited as, e.g. `role.updated`. */
  action: string;
  /** `role:<id>` or `user:<id>`. */
  target: string;
}

/**
 * The rules about the acting user, checked by every use case that changes roles, assignments
 * or users: what they may grant, whom they may act on. Rules of the same kind (when they must
 * have re-authenticated or passed MFA) belong here too. A refusal is FORBIDDEN, names what the
 * actor lacks, and is written to the audit log (outside the change's transaction, which rolls
 * back).
 */
export interface ActorPolicy {
  /**
   * No escalation: FORBIDDEN unless the actor's own permissions in `scope` cover every one of
   * `granted` (only a holder of `*` can grant `*`). Called inside the change's transaction.
   * The actor is judged as if every MFA grace period had ended: what they hold only through a
   * running grace period they may use, but not pass on (a role, an assignment) nor use to
   * change a role's MFA requirement (docs/rbac.md, "MFA policy").
   */
  requireMayGrant(
    actor: Actor,
    granted: readonly string[],
    scope: string,
    attempt: Attempt,
  ): Promise<void>;
  /**
   * No acting on a stronger user: FORBIDDEN unless, in the global scope and in every scope the
   * target holds a role in, the actor's permissions cover the target's. Anyone may act on
   * themselves. The target counts with everything their roles grant, as if they had a second
   * factor: one who has not set it up yet is no weaker for that.
   */
  requireMayActOn(actor: Actor, targetUserId: string, attempt: Attempt): Promise<void>;
  /**
   * FORBIDDEN (reason MFA_REQUIRED_TO_CHANGE_POLICY) unless the actor is known to have a
   * second factor (the projection or the auth service says so; fail closed): for any change of
   * a role's MFA requirement, so that an author can always undo what they set and a password
   * alone cannot weaken the policy.
   */
  requireSecondFactor(actor: Actor, attempt: Attempt): Promise<void>;
}

export function createActorPolicy(deps: {
  checks: Pick<
    PermissionCheckService,
    'effectivePermissions' | 'permissionsWithoutGrace' | 'fullGrant'
  >;
  assignments: Pick<AssignmentRepository, 'listForUsers'>;
  audit: Pick<AuditRepository, 'append'>;
  mfa: Pick<MfaStates, 'enrolment'>;
}): ActorPolicy {
  const { checks, assignments, audit, mfa } = deps;

  async function refuse(
    actorId: string,
    attempt: Attempt,
    missing: string[],
    why: string,
    reason?: string,
  ) {
    await audit.append({
      actorId,
      action: 'access.refused',
      target: attempt.target,
      details: { attempted: attempt.action, missing },
    });
    throw reason
      ? new AppError('FORBIDDEN', `${why}: ${missing.join(', ')}`, { reason })
      : AppError.forbidden(`${why}: ${missing.join(', ')}`);
  }

  return {
    async requireMayGrant(actor, granted, scope, attempt) {
      if (actor.id === null) return;
      const own = await checks.permissionsWithoutGrace(actor.id, scope);
      const missing = uncovered(own, [...new Set(granted)]);
      if (missing.length > 0)
        await refuse(actor.id, attempt, missing, 'You cannot grant what you do not hold');
    },

    async requireMayActOn(actor, targetUserId, attempt) {
      if (actor.id === null || actor.id === targetUserId) return;
      const rows = await assignments.listForUsers([targetUserId]);
      const scopes = [...new Set(['', ...rows.map((row) => row.scope)])];
      const missing = new Set<string>();
      for (const scope of scopes) {
        const [own, theirs] = await Promise.all([
          checks.effectivePermissions(actor.id, scope),
          checks.fullGrant(targetUserId, scope),
        ]);
        for (const permission of uncovered(own, theirs))
          missing.add(scope ? `${permission} in ${scope}` : permission);
      }
      if (missing.size > 0)
        await refuse(
          actor.id,
          attempt,
          [...missing].sort(),
          'You cannot act on a user who holds permissions you do not',
        );
    },

    async requireSecondFactor(actor, attempt) {
      if (actor.id === null) return;
      const { enrolled, known } = await mfa.enrolment(actor.id);
      if (!enrolled || !known)
        await refuse(
          actor.id,
          attempt,
          ['a second factor'],
          "Changing a role's MFA requirement needs your account to have",
          MFA_REQUIRED_TO_CHANGE_POLICY,
        );
    },
  };
}
