import { z } from 'zod';
import { loadEnv, mailEnv, mailRules, serviceEnv, tokenEnv } from '@platform/config';
import { mfaEnv, mfaRules } from './mfa.config';
import { oidcEnv, parseOidcProviders } from './oidc.config';
import { passkeyEnv, passkeyRules } from './passkey.config';

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const env = loadEnv(
  {
    ...serviceEnv('auth-service'),
    ...tokenEnv,
    /** Access token lifetime. */
    ACCESS_TOKEN_TTL: z.coerce
      .number()
      .int()
      .positive()
      .max(24 * 3600)
      .default(900),
    /** The signing key is replaced at start once it is this old; the old one stays published a day. */
    SIGNING_KEY_MAX_AGE_DAYS: z.coerce.number().positive().default(30),
    /** A rotated refresh token presented again within this window is tolerated (two tabs). */
    REFRESH_REUSE_GRACE_SECONDS: seconds(10),
    /** A session ends after this long unused ... */
    SESSION_IDLE_TTL: seconds(7 * 24 * 3600),
    /** ... and after this long in any case. */
    SESSION_ABSOLUTE_TTL: seconds(30 * 24 * 3600),
    /** Verification or reset mails one account is sent per hour (each kind). */
    ONE_TIME_MAILS_PER_HOUR: z.coerce.number().int().positive().default(5),
    /** Active sessions per user; signing in once more ends the least recently used. */
    MAX_SESSIONS_PER_USER: z.coerce.number().int().positive().default(50),
    /** Wrong password guesses at one account from one client address (or known device) ... */
    PASSWORD_GUESSES_PER_CLIENT: z.coerce.number().int().positive().default(5),
    /** ... within this many seconds. */
    PASSWORD_GUESSES_PER_CLIENT_WINDOW: seconds(15 * 60),
    /** Wrong guesses at one account from unknown devices, from all addresses together ... */
    PASSWORD_GUESSES_PER_ACCOUNT: z.coerce.number().int().positive().default(50),
    /** ... within this many seconds. */
    PASSWORD_GUESSES_PER_ACCOUNT_WINDOW: seconds(3600),
    /** A device token (issued at sign-in) is remembered this long after its last use. */
    DEVICE_TOKEN_TTL: seconds(90 * 24 * 3600),
    /** Outgoing mail (verification, password reset). */
    ...mailEnv,
    /** Second factors (TOTP, recovery codes) and re-authentication. */
    ...mfaEnv,
    /** Passkeys (WebAuthn): the relying party and its origins. */
    ...passkeyEnv,
    /** Sign-in with OpenID Connect providers (OIDC_<NAME>_* per provider: oidc.config.ts). */
    ...oidcEnv,
  },
  [
    ...mailRules,
    ...mfaRules,
    ...passkeyRules,
    (parsed) => {
      const { problems } = parseOidcProviders(process.env, parsed.NODE_ENV === 'production');
      return problems.length > 0 ? problems.join('\n  - ') : undefined;
    },
  ],
);

/** The configured OpenID Connect providers (validated above: the service never starts with bad ones). */
export const oidcProviders = parseOidcProviders(
  process.env,
  env.NODE_ENV === 'production',
).providers;
