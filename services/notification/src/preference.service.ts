import { AppError } from '@platform/errors';
import { requireId } from '@platform/validation';
import type { NotificationRepository } from './notification.repository';
import {
  effectiveChannels,
  isInAppLocked,
  KNOWN_TYPES,
  requireType,
  type Channels,
} from './notification.types';

const MAX_CHANGES = 50;

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
  /** Applies the changes together; security notices cannot be switched off in-app. */
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
      }
      await notifications.transaction(async (tx) => {
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
