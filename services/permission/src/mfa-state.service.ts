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

/** What an auth.mfa_changed event says; the state is absent in events from before it was added. */
export interface MfaChange {
  userId: string;
  state: MfaStateRow | null;
}

/** Users' second factors as the MFA policy needs them (the auth service owns the factors). */
export interface MfaStates {
  /**
   * From the projection; for a user it has no row of (enrolled before the projection existed, or
   * no event arrived yet), the auth service's answer, then remembered. When the auth service
   * cannot answer: not enrolled, and not known.
   */
  enrolment(userId: string): Promise<Enrolment>;
  /**
   * Records an auth.mfa_changed event (once per event id; an older state than the stored one is
   * ignored) and forgets the user's cached permissions: true when the state stored changed. An
   * event without the state asks the auth service for the current one.
   */
  record(change: MfaChange, consumer: string, eventId: string): Promise<boolean>;
}

export function createMfaStates(deps: {
  store: RbacStore;
  cache: Pick<PermissionCache, 'forgetUser'>;
  directory: MfaDirectory;
  logger: Pick<Logger, 'warn'>;
}): MfaStates {
  const { store, cache, directory, logger } = deps;
  return {
    async enrolment(userId) {
      const row = await store.mfaStates.find(userId);
      if (row) return { enrolled: row.enrolled, known: true };
      try {
        const state = await directory.stateOf(userId);
        // Versioned like an event's: an event that overtook this answer keeps its newer state.
        await store.mfaStates.saveIfNewer(userId, state);
        return { enrolled: state.enrolled, known: true };
      } catch (error) {
        logger.warn(
          { err: error, userId },
          'auth service could not say whether the user has a second factor; withholding what needs one',
        );
        return { enrolled: false, known: false };
      }
    },

    async record({ userId, state }, consumer, eventId) {
      // Asked before the transaction (no connection held while waiting for the auth service); a
      // failure fails the delivery, which is retried.
      const current = state ?? (await directory.stateOf(userId));
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
