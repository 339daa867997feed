import { AppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import * as client from 'openid-client';
import type { OidcProviderConfig } from './oidc.config';

/** Who the provider says signed in, after the library validated the ID token. */
export interface OidcIdentity {
  /** The ID token's `sub`: the provider's stable name for the person. */
  subject: string;
  email: string | undefined;
  /** Only `email_verified: true` counts; missing is false. */
  emailVerified: boolean;
  name: string | undefined;
}

/** What a begun sign-in sends the browser with (the verifier itself stays server-side). */
export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  nonce: string;
  codeChallenge: string;
}

export interface Redemption {
  code: string;
  state: string;
  redirectUri: string;
  codeVerifier: string;
  nonce: string;
}

/**
 * The OpenID Connect protocol, done by `openid-client`: discovery, the authorization URL, and
 * redeeming a code (PKCE verifier, state, nonce, ID token signature, issuer, audience, expiry).
 */
export interface OidcClient {
  /** The provider's authorization URL; SERVICE_UNAVAILABLE while its discovery fails. */
  authorizationUrl(provider: OidcProviderConfig, request: AuthorizationRequest): Promise<string>;
  /**
   * The identity the code vouches for. A refused code or an ID token that does not validate is
   * UNAUTHENTICATED; a provider that cannot be reached is SERVICE_UNAVAILABLE.
   */
  redeem(provider: OidcProviderConfig, redemption: Redemption): Promise<OidcIdentity>;
}

export interface OidcClientOptions {
  logger: Pick<Logger, 'warn'>;
  /** Allow http issuers (outside production only; environment.ts refuses them in production). */
  allowHttp: boolean;
  /** Seconds each request to a provider may take. */
  timeoutSeconds?: number;
  /** Seconds before a failed discovery is tried again (one provider down costs no hammering). */
  retryDiscoveryAfterSeconds?: number;
  /** The fetch the library uses (tests put a tampering proxy in front of a provider). */
  fetch?: typeof fetch;
  clock?: () => number;
}

const signInFailed = (provider: string) =>
  AppError.unauthenticated(`Sign-in with ${provider} failed; begin again`);

/** A refusal by the provider or the library's checks (not an outage). */
const isProtocolFailure = (error: unknown) =>
  error instanceof client.ClientError ||
  error instanceof client.AuthorizationResponseError ||
  error instanceof client.WWWAuthenticateChallengeError ||
  (error instanceof client.ResponseBodyError && error.status < 500);

export function createOidcClient(options: OidcClientOptions): OidcClient {
  const { logger } = options;
  const clock = options.clock ?? Date.now;
  const retryAfterMs = (options.retryDiscoveryAfterSeconds ?? 5) * 1000;
  const configs = new Map<string, Promise<client.Configuration>>();
  const failedAt = new Map<string, number>();

  async function discover(provider: OidcProviderConfig): Promise<client.Configuration> {
    const auth = provider.clientSecret
      ? client.ClientSecretBasic(provider.clientSecret)
      : client.None();
    // Every ID token's signature is checked against the provider's JWKS, also the ones the token
    // endpoint answers (the library otherwise relies on TLS for those, OIDC Core 3.1.3.7).
    const execute: ((config: client.Configuration) => void)[] = [client.enableNonRepudiationChecks];
    if (options.allowHttp && provider.issuer.startsWith('http:'))
      execute.push(client.allowInsecureRequests);
    const custom = options.fetch;
    return client.discovery(new URL(provider.issuer), provider.clientId, undefined, auth, {
      execute,
      timeout: options.timeoutSeconds ?? 10,
      ...(custom
        ? {
            [client.customFetch]: (url: string, init: client.CustomFetchOptions) =>
              custom(url, init),
          }
        : {}),
    });
  }

  /** The provider's discovered configuration; discovery is tried again after a failure. */
  async function configOf(provider: OidcProviderConfig): Promise<client.Configuration> {
    const cached = configs.get(provider.name);
    if (cached) return cached;
    const lastFailure = failedAt.get(provider.name);
    if (lastFailure !== undefined && clock() - lastFailure < retryAfterMs)
      throw AppError.unavailable(undefined, Math.ceil(retryAfterMs / 1000));
    const pending = discover(provider);
    configs.set(provider.name, pending);
    try {
      const config = await pending;
      failedAt.delete(provider.name);
      return config;
    } catch (error) {
      configs.delete(provider.name);
      failedAt.set(provider.name, clock());
      // The message names the issuer's URL and the failure, never a secret.
      logger.warn(
        { provider: provider.name, reason: error instanceof Error ? error.message : 'unknown' },
        'OIDC discovery failed; the provider answers SERVICE_UNAVAILABLE until it succeeds',
      );
      throw AppError.unavailable();
    }
  }

  return {
    async authorizationUrl(provider, request) {
      const config = await configOf(provider);
      return client
        .buildAuthorizationUrl(config, {
          redirect_uri: request.redirectUri,
          scope: provider.scopes.join(' '),
          response_type: 'code',
          code_challenge: request.codeChallenge,
          code_challenge_method: 'S256',
          state: request.state,
          nonce: request.nonce,
        })
        .toString();
    },

    async redeem(provider, redemption) {
      const config = await configOf(provider);
      // The callback as the browser got it. The state was bound to this provider when it was
      // issued, which is what the `iss` parameter (RFC 9207, mix-up) protects; it is set to the
      // expected issuer for providers that announce it.
      const callback = new URL(redemption.redirectUri);
      callback.searchParams.set('code', redemption.code);
      callback.searchParams.set('state', redemption.state);
      const metadata = config.serverMetadata();
      if (metadata.authorization_response_iss_parameter_supported)
        callback.searchParams.set('iss', metadata.issuer);
      try {
        const tokens = await client.authorizationCodeGrant(config, callback, {
          pkceCodeVerifier: redemption.codeVerifier,
          expectedState: redemption.state,
          expectedNonce: redemption.nonce,
          idTokenExpected: true,
        });
        const claims = tokens.claims();
        if (!claims) throw signInFailed(provider.name);
        let source: Record<string, unknown> = claims;
        // Many providers put email only in the UserInfo response; its `sub` must match.
        if (claims['email'] === undefined && tokens.access_token)
          source = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
        const email = typeof source['email'] === 'string' ? source['email'] : undefined;
        const name = typeof source['name'] === 'string' ? source['name'] : undefined;
        return {
          subject: claims.sub,
          email,
          emailVerified: source['email_verified'] === true,
          name,
        };
      } catch (error) {
        if (error instanceof AppError) throw error;
        // The library's messages may quote tokens or codes: the caller learns only that it failed.
        if (isProtocolFailure(error)) throw signInFailed(provider.name);
        logger.warn(
          { provider: provider.name, reason: error instanceof Error ? error.name : 'unknown' },
          'OIDC provider unreachable while redeeming a code',
        );
        throw AppError.unavailable();
      }
    },
  };
}
