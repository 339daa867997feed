import { AppError } from '@platform/errors';

/** Notification types are short slugs: `welcome`, `security`, `invoice.paid`. */
const NOTIFICATION_TYPE = /^[a-z][a-z0-9_.-]{0,49}$/;

/** The type itself; BAD_USER_INPUT when it is not a slug. */
export function requireType(type: string): string {
  if (!NOTIFICATION_TYPE.test(type))
    throw AppError.badInput(
      'type',
      'must be a slug: a lowercase letter, then up to 49 of a-z 0-9 _ . -',
    );
  return type;
}

export interface Channels {
  inApp: boolean;
  email: boolean;
}

interface KnownType extends Channels {
  /** The in-app channel cannot be switched off (security notices). */
  inAppLocked?: boolean;
  /** Nor the email (changes to how the account signs in). */
  emailLocked?: boolean;
}

/** The types the platform itself sends, with their default channels. */
export const KNOWN_TYPES: Record<string, KnownType> = {
  welcome: { inApp: true, email: false },
  role_changed: { inApp: true, email: false },
  security: { inApp: true, email: true, inAppLocked: true },
  /** A second factor changed or a recovery code was used: always in-app and by email. */
  'security.mfa': { inApp: true, email: true, inAppLocked: true, emailLocked: true },
};

/**
 * Whether a type passes for one of the platform's own: a known type, or one of them followed by
 * a separator (anything but a letter or digit: `security.password`, `welcome-back`,
 * `role_changed:x`), in any case. Senders may use none of these.
 */
export function isReservedType(type: string): boolean {
  const sent = type.toLowerCase();
  return Object.keys(KNOWN_TYPES).some((known) => {
    const reserved = known.toLowerCase();
    return sent.startsWith(reserved) && !/^[\p{L}\p{N}]/u.test(sent.slice(reserved.length));
  });
}

/** Any other type (sent with `sendNotification`): in the inbox, no email. */
const OTHER_TYPES: Channels = { inApp: true, email: false };

export const defaultsFor = (type: string): Channels => {
  const known = KNOWN_TYPES[type];
  return known ? { inApp: known.inApp, email: known.email } : OTHER_TYPES;
};

export const isInAppLocked = (type: string): boolean => KNOWN_TYPES[type]?.inAppLocked === true;
export const isEmailLocked = (type: string): boolean => KNOWN_TYPES[type]?.emailLocked === true;

/** What applies: the user's stored choice over the default; a locked in-app channel stays on. */
export function effectiveChannels(type: string, stored: Channels | undefined): Channels {
  const channels = stored ?? defaultsFor(type);
  return {
    inApp: channels.inApp || isInAppLocked(type),
    email: channels.email || isEmailLocked(type),
  };
}
