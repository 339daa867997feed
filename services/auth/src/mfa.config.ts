import { z } from 'zod';
import { parseSecretKeys } from './secret-box';

/**
 * The key that seals TOTP secrets when MFA_ENCRYPTION_KEYS is unset: for development and tests
 * only (it is public). Production refuses to start without MFA_ENCRYPTION_KEYS.
 */
const DEVELOPMENT_KEY = Buffer.alloc(32, 'development-only-mfa-key');
export const DEVELOPMENT_MFA_KEYS = `dev:${DEVELOPMENT_KEY.toString('base64')}`;

/** Whether any of the keys is the (public) development key, under whatever id. */
function includesDevelopmentKey(text: string | undefined): boolean {
  if (text === undefined) return false;
  try {
    return parseSecretKeys(text).some(({ key }) => key.equals(DEVELOPMENT_KEY));
  } catch {
    return false; // malformed: MFA_ENCRYPTION_KEYS's own check says why
  }
}

const seconds = (fallback: number, max: number) =>
  z.coerce.number().int().positive().max(max).default(fallback);

/** The auth service's multi-factor settings (docs/identity.md, "Multi-factor authentication"). */
export const mfaEnv = {
  /**
   * `id:base64key[,id:base64key...]`, 32-byte AES keys: the first seals new TOTP secrets, all
   * open existing ones (rotation: put a new key first, keep the old ones until re-sealed).
   */
  MFA_ENCRYPTION_KEYS: z
    .string()
    .optional()
    .superRefine((value, context) => {
      if (value === undefined) return;
      try {
        parseSecretKeys(value);
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  /** The issuer shown by authenticator apps (otpauth URI). */
  MFA_TOTP_ISSUER: z.string().min(1).max(64).default('Platform'),
  /** How long a sign-in may wait for its second factor. */
  MFA_CHALLENGE_TTL: seconds(300, 900),
  /** Managing factors needs a sign-in or re-authentication this recent. */
  REAUTH_WINDOW_SECONDS: seconds(300, 3600),
};

export const mfaRules = [
  (env: { NODE_ENV: string; MFA_ENCRYPTION_KEYS?: string | undefined }) =>
    env.NODE_ENV === 'production' && !env.MFA_ENCRYPTION_KEYS
      ? 'MFA_ENCRYPTION_KEYS: is required in production (it seals TOTP secrets at rest)'
      : env.NODE_ENV === 'production' && includesDevelopmentKey(env.MFA_ENCRYPTION_KEYS)
        ? 'MFA_ENCRYPTION_KEYS: must not contain the development key in production'
        : undefined,
];

/** The keys to seal and open with: the configured ones, else the development key. */
export const mfaKeysOf = (env: { MFA_ENCRYPTION_KEYS?: string | undefined }) =>
  parseSecretKeys(env.MFA_ENCRYPTION_KEYS ?? DEVELOPMENT_MFA_KEYS);
