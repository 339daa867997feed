import type { Logger } from '@platform/logger';
import type { MfaDirectory } from './mfa.directory';
import type { MfaStateRow } from './mfa-state.repository';
import type { PermissionCache } from './permission.cache';
import type { RbacStore } from './rbac.store';

/** Whether a user has a second factor; `known: false` when nobody could say (fail closed). */
export interface Enrolment {
  enrolled: boolean;
  known: boolean;
}

const UNKNOWN: Enrolment = Object.freeze({ enrolled: false, known: false });

/** Users' second factors as the MFA policy needs them (the auth service owns the factors). */
export interface MfaStates {
  /**
   * From the projection; for a user it has no row of (enrolled before the projection existed, or
   * no event arrived yet), the auth service's answer, then remembered. When the auth service
   * cannot answer: not enrolled, and not known.
   */
  enrolment(userId: string): Promise<Enrolment>;
  /**
   * The same for several users at once, by user id: one read of the projection, one
   * GetMfaStatus for the users it has no row of.
   */
  enrolments(userIds: readonly string[]): Promise<Map<string, Enrolment>>;
  /**
   * Follows an auth.mfa_changed event about the user (once per event id). The event is only a
   * signal: anyone holding the broker's credential could publish one, so what it says is never
   * stored. The user's current state and version are asked of the auth service and stored
   * unless a newer version is stored already (a version-0 row, backfilled or from before the
   * auth service versioned states, is replaced by any answer); the user's cached permissions
   * are forgotten. When the auth service cannot answer, this throws: the delivery fails and is
   * retried, never trusted. True when the state stored changed.
   */
  record(userId: string, consumer: string, eventId: string): Promise<boolean>;
}

export function createMfaStates(deps: {
  store: RbacStore;
  cache: Pick<PermissionCache, 'forgetUser'>;
  directory: MfaDirectory;
  logger: Pick<Logger, 'warn'>;
}): MfaStates {
  const { store, cache, directory, logger } = deps;

  async function enrolments(requested: readonly string[]): Promise<Map<string, Enrolment>> {
    const userIds = [...new Set(requested)];
    const answers = new Map<string, Enrolment>();
    if (userIds.length === 0) return answers;
    const rows = await store.mfaStates.findMany(userIds);
    for (const [userId, row] of rows) answers.set(userId, { enrolled: row.enrolled, known: true });
    const missing = userIds.filter((userId) => !rows.has(userId));
    if (missing.length === 0) return answers;
    try {
      const states = await directory.statesOf(missing);
      for (const userId of missing) {
        const state = states.get(userId) ?? { enrolled: false, version: 0 };
        // Versioned like the consumer's answers: one stored meanwhile with a newer version stays.
        await store.mfaStates.saveIfNewer(userId, state);
        answers.set(userId, { enrolled: state.enrolled, known: true });
      }
    } catch (error) {
      logger.warn(
        { err: error, userIds: missing },
        'auth service could not say whether users have a second factor; withholding what needs one',
      );
      for (const userId of missing) answers.set(userId, UNKNOWN);
    }
    return answers;
  }

  return {
    enrolments,

    async enrolment(userId) {
      return (await enrolments([userId])).get(userId) ?? UNKNOWN;
    },

    async record(userId, consumer, eventId) {
      // Asked before the transaction (no connection held while waiting for the auth service); a
      // failure fails the delivery, which is retried.
      const current: MfaStateRow | undefined = (await directory.statesOf([userId])).get(userId);
      if (!current) throw new Error(`auth service answered no MFA state for user ${userId}`);
      const changed = await store.transaction(async (tx) => {
        if (!(await tx.outbox.processOnce(consumer, eventId))) return false;
        const before = await tx.mfaStates.find(userId);
        if (!(await tx.mfaStates.saveIfNewer(userId, current))) return false;
        if (before?.enrolled === current.enrolled) return false;
        // Inside the transaction (Redis unreachable rolls it back, the delivery is retried) ...
        await cache.forgetUser(userId);
        return true;
      });
      // ... and once committed, also on a redelivery (the first forget may be what failed).
      await cache.forgetUser(userId);
      return changed;
    },
  };
}
