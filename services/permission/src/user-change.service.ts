import type { Actor, ActorPolicy } from './actor.policy';
import type { LastAdminRule } from './last-admin.rule';
import type { RbacStore } from './rbac.store';

/** A change the user service makes to a user, which the permission service rules on first. */
export type UserChange = 'disable' | 'enable' | 'delete';

const AUDITED: Record<UserChange, string> = {
  disable: 'user.disabled',
  enable: 'user.enabled',
  delete: 'user.deleted',
};

/**
 * The rules on disabling, enabling and deleting users, which the user service carries out:
 * `begin` before the change, `end` after it (made or not).
 */
export interface UserChangeService {
  /**
   * FORBIDDEN unless the actor may act on the user. Disabling and deleting: under the graph
   * lock, BAD_USER_INPUT when the user is the last active global admin, else marks them
   * leaving. Answers the mark's token ("" when nothing was marked).
   */
  begin(actor: Actor, userId: string, change: UserChange): Promise<string>;
  /** Clears the mark; audits the change when it was made. */
  end(
    actor: Actor,
    userId: string,
    change: UserChange,
    token: string,
    done: boolean,
  ): Promise<void>;
}

export function createUserChangeService(deps: {
  store: RbacStore;
  policy: ActorPolicy;
  lastAdmin: LastAdminRule;
}): UserChangeService {
  const { store, policy, lastAdmin } = deps;

  return {
    async begin(actor, userId, change) {
      await policy.requireMayActOn(actor, userId, {
        action: AUDITED[change],
        target: `user:${userId}`,
      });
      if (change === 'enable') return '';
      return store.transaction(async (tx) => {
        await tx.roles.lockGraph();
        await lastAdmin.requireNotLast(tx, userId);
        // Marked in the decision's transaction, before the lock goes: the next removal already
        // counts this user as gone; a commit that fails takes the mark with it.
        return tx.leaving.mark(userId);
      });
    },

    async end(actor, userId, change, token, done) {
      try {
        if (done)
          await store.audit.append({
            actorId: actor.id,
            action: AUDITED[change],
            target: `user:${userId}`,
            details: {},
          });
      } finally {
        if (token) await store.leaving.clear(token);
      }
    },
  };
}
