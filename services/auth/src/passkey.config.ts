import { z } from 'zod';

/** Outside production, without configuration: a relying party on localhost. */
export const DEVELOPMENT_RP_ID = 'localhost';
export const DEVELOPMENT_ORIGINS =
  'http://localhost:3000,http://localhost:4000,http://localhost:5173';

const origin = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.origin === value && (url.protocol === 'https:' || url.hostname === 'localhost');
  } catch {
    return false;
  }
}, 'each origin must be scheme://host[:port] (https, or http on localhost)');

/** The auth service's passkey (WebAuthn) settings (docs/identity.md, "Passkeys"). */
export const passkeyEnv = {
  /** The relying-party id: the registrable domain passkeys are bound to (e.g. example.com). */
  WEBAUTHN_RP_ID: z
    .string()
    .regex(/^[a-z0-9.-]{1,253}$/, 'must be a domain name, e.g. example.com')
    .optional(),
  /** The name authenticators show for the relying party. */
  WEBAUTHN_RP_NAME: z.string().min(1).max(64).default('Platform'),
  /** Comma-separated origins the ceremonies may come from (the frontends' origins). */
  WEBAUTHN_ORIGINS: z
    .string()
    .optional()
    .superRefine((value, context) => {
      if (value === undefined) return;
      for (const entry of value.split(',')) {
        const result = origin.safeParse(entry.trim());
        if (!result.success)
          context.addIssue({
            code: 'custom',
            message: `"${entry.trim()}": ${result.error.issues[0]?.message}`,
          });
      }
    }),
  /** Seconds a ceremony's challenge stays usable (single-use, in Redis). */
  WEBAUTHN_CHALLENGE_TTL: z.coerce.number().int().positive().max(600).default(120),
};

export const passkeyRules = [
  (env: { NODE_ENV: string; WEBAUTHN_RP_ID?: string | undefined }) =>
    env.NODE_ENV === 'production' && !env.WEBAUTHN_RP_ID
      ? 'WEBAUTHN_RP_ID: is required in production (the domain passkeys are bound to)'
      : undefined,
  (env: { NODE_ENV: string; WEBAUTHN_ORIGINS?: string | undefined }) =>
    env.NODE_ENV === 'production' && !env.WEBAUTHN_ORIGINS
      ? 'WEBAUTHN_ORIGINS: is required in production (the origins passkey ceremonies come from)'
      : undefined,
];

export interface RelyingParty {
  id: string;
  name: string;
  origins: string[];
}

/** The relying party: the configured one, else localhost's (outside production only). */
export const relyingPartyOf = (env: {
  WEBAUTHN_RP_ID?: string | undefined;
  WEBAUTHN_RP_NAME: string;
  WEBAUTHN_ORIGINS?: string | undefined;
}): RelyingParty => ({
  id: env.WEBAUTHN_RP_ID ?? DEVELOPMENT_RP_ID,
  name: env.WEBAUTHN_RP_NAME,
  origins: (env.WEBAUTHN_ORIGINS ?? DEVELOPMENT_ORIGINS)
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean),
});
