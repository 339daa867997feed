import {
  startTestOidcProvider,
  type TestOidcAccount,
  type TestOidcProvider,
} from '@platform/oidc-testing';
import { graphql, type GraphQLResponse } from './graphql.client';

/** The frontend's callback page the test providers send codes to. */
export const OIDC_REDIRECT_URI = 'http://localhost:3000/oidc/callback';

const PROVIDERS = { idp: 'platform-e2e', spare: 'platform-spare' } as const;
export type OidcProviderName = keyof typeof PROVIDERS;

/**
 * A real OpenID Connect provider in the test process, registered as two providers of the
 * platform (`idp` and `spare`: two clients of it), and the auth service's environment for them.
 */
export async function startOidcProviders(): Promise<{
  idp: TestOidcProvider;
  env: Record<string, string>;
}> {
  const secret = (name: string) => `${name}-client-secret`;
  const idp = await startTestOidcProvider({
    clients: Object.values(PROVIDERS).map((clientId) => ({
      clientId,
      clientSecret: secret(clientId),
      redirectUris: [OIDC_REDIRECT_URI],
    })),
  });
  const env: Record<string, string> = {
    OIDC_PROVIDERS: Object.keys(PROVIDERS).join(','),
    OIDC_REDIRECT_URIS: OIDC_REDIRECT_URI,
  };
  for (const [name, clientId] of Object.entries(PROVIDERS)) {
    const prefix = `OIDC_${name.toUpperCase()}_`;
    env[`${prefix}ISSUER`] = idp.issuer;
    env[`${prefix}CLIENT_ID`] = clientId;
    env[`${prefix}CLIENT_SECRET`] = secret(clientId);
  }
  return { idp, env };
}

const BEGIN = `mutation ($provider: String!, $redirectUri: String!) {
  oidcAuthorizationUrl(provider: $provider, redirectUri: $redirectUri) { url state binding expiresAt } }`;
export const COMPLETE_OIDC = `mutation ($provider: String!, $code: String!, $state: String!, $binding: String!) {
  completeOidcLogin(provider: $provider, code: $code, state: $state, binding: $binding) {
    __typename
    ... on AuthPayload { accessToken refreshToken deviceToken user { id email displayName } }
    ... on MfaChallenge { challenge methods }
    ... on OidcLinkRequired { provider email linkToken expiresAt }
  } }`;

export type OidcSignInResult =
  | {
      __typename: 'AuthPayload';
      accessToken: string;
      refreshToken: string;
      deviceToken: string | null;
      user: { id: string; email: string; displayName: string };
    }
  | { __typename: 'MfaChallenge'; challenge: string; methods: string[] }
  | {
      __typename: 'OidcLinkRequired';
      provider: string;
      email: string;
      linkToken: string;
      expiresAt: string;
    };

/** A frontend's side of the code flow, through the gateway, with the browser played by fetch. */
export function createOidcDriver(gateway: string, idp: TestOidcProvider) {
  let people = 0;
  const driver = {
    /** A new person at the provider (email verified unless said otherwise). */
    person(overrides: Partial<TestOidcAccount> = {}): TestOidcAccount {
      people++;
      const account = {
        sub: `person-${people}-${Date.now()}`,
        email: `oidc-${people}-${Date.now()}@example.com`,
        emailVerified: true,
        name: `Person ${people}`,
        ...overrides,
      };
      idp.addAccount(account);
      return account;
    },

    begin(provider: string, redirectUri = OIDC_REDIRECT_URI) {
      return graphql<{
        oidcAuthorizationUrl: { url: string; state: string; binding: string; expiresAt: string };
      }>(gateway, BEGIN, { variables: { provider, redirectUri } });
    },

    /** `binding`: what the begin answered to this browser (kept out of every URL). */
    complete(provider: string, code: string, state: string, binding: string) {
      return graphql<{ completeOidcLogin: OidcSignInResult }>(gateway, COMPLETE_OIDC, {
        variables: { provider, code, state, binding },
      });
    },

    /** Begins at the gateway, signs in at the provider as `sub`, and answers the callback's code and state. */
    async authorize(
      sub: string,
      options: { provider?: OidcProviderName; tamperUrl?: (url: URL) => void } = {},
    ) {
      const provider = options.provider ?? 'idp';
      const begun = await driver.begin(provider);
      if (!begun.data) throw new Error(JSON.stringify(begun.errors));
      const url = new URL(begun.data.oidcAuthorizationUrl.url);
      options.tamperUrl?.(url);
      const callback = await idp.authorize(url.toString(), sub);
      if (callback.state !== begun.data.oidcAuthorizationUrl.state)
        throw new Error('the callback carries another state');
      return { provider, binding: begun.data.oidcAuthorizationUrl.binding, ...callback };
    },

    /** The whole flow: begin, sign in at the provider, complete at the gateway. */
    async signInAs(
      sub: string,
      options: { provider?: OidcProviderName; tamperUrl?: (url: URL) => void } = {},
    ): Promise<GraphQLResponse<{ completeOidcLogin: OidcSignInResult }>> {
      const { provider, code, state, binding } = await driver.authorize(sub, options);
      return driver.complete(provider, code, state, binding);
    },
  };
  return driver;
}
