import { AppError } from '@platform/errors';
import { requireId } from '@platform/validation';
import type { NotificationRepository } from './notification.repository';
import {
  effectiveChannels,
  isEmailLocked,
  isInAppLocked,
  KNOWN_TYPES,
  requireType,
  type Channels,
} from './notification.types';

const MAX_CHANGES = 50;
/** The most types one user may store a preference for (each change of a new type stores one). */
export const MAX_STORED_PREFERENCES = 100;

export interface Preference extends Channels {
  type: string;
}

export interface PreferenceChange {
  type: string;
  /** Unchanged when undefined. */
  inApp?: boolean | undefined;
  email?: boolean | undefined;
}

export interface PreferenceService {
  /** Every known type's channels and every stored one's, by type; defaults filled in. */
  get(userId: string): Promise<Preference[]>;
  /**
   * Applies the changes together; security notices cannot be switched off in-app. A change
   * that would store preferences for more than `MAX_STORED_PREFERENCES` types is refused.
   */
  update(userId: string, changes: readonly PreferenceChange[]): Promise<Preference[]>;
}

export function createPreferenceService(deps: {
  notifications: Pick<NotificationRepository, 'preferencesOf' | 'transaction'>;
}): PreferenceService {
  const { notifications } = deps;

  async function get(userId: string): Promise<Preference[]> {
    const stored = await notifications.preferencesOf(requireId('userId', userId));
    const byType = new Map(stored.map((row) => [row.type, row]));
    const types = [...new Set([...Object.keys(KNOWN_TYPES), ...byType.keys()])].sort();
    return types.map((type) => {
      const { inApp, email } = effectiveChannels(type, byType.get(type));
      return { type, inApp, email };
    });
  }

  return {
    get,

    async update(userId, changes) {
      requireId('userId', userId);
      if (changes.length > MAX_CHANGES)
        throw AppError.badInput('input', `at most ${MAX_CHANGES} at once`);
      for (const change of changes) {
        requireType(change.type);
        if (change.inApp === false && isInAppLocked(change.type))
          throw AppError.badInput(
            'inApp',
            `"${change.type}" notices cannot be switched off in-app`,
          );
        if (change.email === false && isEmailLocked(change.type))
          throw AppError.badInput(
            'email',
            `"${change.type}" notices cannot be switched off by email`,
          );
      }
      await notifications.transaction(async (tx) => {
        // One change of the user's preferences at a time, so two at once cannot both pass the cap.
        await tx.lockPreferencesOf(userId);
        const stored = new Set(await tx.preferenceTypesOf(userId));
        const added = new Set(changes.map((change) => change.type).filter((t) => !stored.has(t)));
        if (stored.size + added.size > MAX_STORED_PREFERENCES)
          throw AppError.badInput(
            'input',
            `at most ${MAX_STORED_PREFERENCES} notification types with a preference (${stored.size} stored)`,
          );
        for (const { type, inApp, email } of changes)
          await tx.changePreference(
            userId,
            type,
            { inApp, email },
            effectiveChannels(type, undefined),
          );
      });
      return get(userId);
    },
  };
}
