import { z } from 'zod';

/** A provider's name: what the API and OIDC_<NAME>_* variables call it. */
const PROVIDER_NAME = /^[a-z][a-z0-9]{0,31}$/;

/** One configured OpenID Connect provider (docs/identity.md, "OpenID Connect"). */
export interface OidcProviderConfig {
  /** The configured name, lowercase: `google`, `corp`. */
  name: string;
  /** The issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  clientId: string;
  /** Absent: a public client (PKCE only, token endpoint auth `none`). */
  clientSecret: string | undefined;
  /** Always includes `openid` and `email`. */
  scopes: string[];
  /** The exact redirect URIs a sign-in may name; anything else is refused. */
  redirectUris: string[];
}

const isLocalHost = (url: URL) => ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);

/** A URL a provider or a redirect may use: https, or http on this machine outside production. */
function urlProblem(value: string, production: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.hash) return 'must not have a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLocalHost(url) && !production) return undefined;
  return production ? 'must be https' : 'must be https (or http on localhost)';
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(/[\s,]+/)
    .map((entry) => entry.trim())
    .filter(Boolean);

/** The variables of the OIDC settings. */
export const oidcEnv = {
  /** Comma-separated provider names; each has OIDC_<NAME>_ISSUER, _CLIENT_ID, ... */
  OIDC_PROVIDERS: z.string().optional(),
  /** Redirect URIs every provider accepts (comma-separated); OIDC_<NAME>_REDIRECT_URIS adds to it. */
  OIDC_REDIRECT_URIS: z.string().optional(),
  /** Seconds a begun sign-in (state, nonce, PKCE verifier) stays usable. */
  OIDC_STATE_TTL: z.coerce.number().int().positive().max(1800).default(600),
  /** Seconds an unlinked identity's link token stays usable. */
  OIDC_LINK_TTL: z.coerce.number().int().positive().max(3600).default(600),
};

type RawEnv = Readonly<Record<string, string | undefined>>;

/**
 * The configured providers, or every problem with their variables. Provider variables are
 * named after the providers, so they are read here from the raw environment (environment.ts
 * hands it over), not from a fixed shape.
 */
export function parseOidcProviders(
  raw: RawEnv,
  production: boolean,
): { providers: OidcProviderConfig[]; problems: string[] } {
  const problems: string[] = [];
  const providers: OidcProviderConfig[] = [];
  const names = list(raw['OIDC_PROVIDERS']);
  const shared = list(raw['OIDC_REDIRECT_URIS']);
  for (const uri of shared) {
    const problem = urlProblem(uri, production);
    if (problem) problems.push(`OIDC_REDIRECT_URIS: "${uri}" ${problem}`);
  }
  for (const name of names) {
    if (!PROVIDER_NAME.test(name)) {
      problems.push(
        `OIDC_PROVIDERS: "${name}" must be lowercase letters and digits, starting with a letter (at most 32)`,
      );
      continue;
    }
    if (providers.some((provider) => provider.name === name)) {
      problems.push(`OIDC_PROVIDERS: "${name}" is listed twice`);
      continue;
    }
    const prefix = `OIDC_${name.toUpperCase()}_`;
    const value = (key: string) => raw[prefix + key] || undefined;
    const issuer = value('ISSUER');
    const clientId = value('CLIENT_ID');
    if (!issuer) problems.push(`${prefix}ISSUER: is required (provider "${name}")`);
    else {
      const problem = urlProblem(issuer, production);
      if (problem) problems.push(`${prefix}ISSUER: ${problem}`);
    }
    if (!clientId) problems.push(`${prefix}CLIENT_ID: is required (provider "${name}")`);
    const own = list(value('REDIRECT_URIS'));
    for (const uri of own) {
      const problem = urlProblem(uri, production);
      if (problem) problems.push(`${prefix}REDIRECT_URIS: "${uri}" ${problem}`);
    }
    const redirectUris = [...new Set([...shared, ...own])];
    if (redirectUris.length === 0)
      problems.push(
        `${prefix}REDIRECT_URIS: provider "${name}" has no redirect URI (set it or OIDC_REDIRECT_URIS)`,
      );
    const scopes = list(value('SCOPES') ?? 'openid email profile');
    for (const needed of ['openid', 'email']) if (!scopes.includes(needed)) scopes.unshift(needed);
    providers.push({
      name,
      issuer: issuer ?? '',
      clientId: clientId ?? '',
      clientSecret: value('CLIENT_SECRET'),
      scopes: [...new Set(scopes)],
      redirectUris,
    });
  }
  return { providers, problems };
}
