// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- oidc-provider ships no types; these are ours, needed wherever this module is compiled
/// <reference path="./oidc-provider.d.ts" />
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** A person at the test provider. */
export interface TestOidcAccount {
  /** The ID token's `sub`. */
  sub: string;
  email?: string;
  /** Missing means the provider says nothing about it. */
  emailVerified?: boolean;
  name?: string;
}

export interface TestOidcClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

/** What the provider redirected the browser to at the end of a sign-in. */
export interface TestCallback {
  code: string;
  state: string;
  url: URL;
}

/** A real OpenID Connect provider (`oidc-provider`) in the test process, on 127.0.0.1. */
export interface TestOidcProvider {
  /** `http://127.0.0.1:<port>`: discovery at `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  /** Adds (or replaces) a person who can sign in. */
  addAccount(account: TestOidcAccount): void;
  /**
   * Follows an authorization URL as a browser would: the provider's login and consent are
   * answered for `sub` (programmatically, no forms), cookies kept between redirects, until the
   * provider redirects to the client's redirect URI; answers the code and state it carries.
   */
  authorize(authorizationUrl: string, sub: string): Promise<TestCallback>;
  /** The next ID token the token endpoint answers has one character of its signature changed. */
  tamperNextIdToken(): void;
  close(): Promise<void>;
}

/** Changes one character in the middle of a JWS's signature (not the last: padding bits). */
function tamperSignature(jws: string): string {
  const [header, payload, signature = ''] = jws.split('.');
  const at = Math.floor(signature.length / 2);
  const swapped = signature[at] === 'A' ? 'B' : 'A';
  return `${header}.${payload}.${signature.slice(0, at)}${swapped}${signature.slice(at + 1)}`;
}

export async function startTestOidcProvider(options: {
  clients: TestOidcClient[];
}): Promise<TestOidcProvider> {
  const accounts = new Map<string, TestOidcAccount>();
  /** Who signs in for each authorization request, by its state. */
  const logins = new Map<string, string>();
  let tamperNext = false;
  const started: { provider?: Provider } = {};

  const server = createServer((request, response) => {
    const current = started.provider;
    if (!current) {
      response.writeHead(503).end();
      return;
    }
    if (request.url?.startsWith('/interaction/')) {
      // Login and consent in one step, for the account the test named.
      void (async () => {
        const details = await current.interactionDetails(request, response);
        const sub = logins.get(details.params['state'] ?? '');
        if (!sub || !accounts.has(sub)) {
          response.writeHead(400).end('no test login for this request');
          return;
        }
        const clientId = details.params['client_id'] ?? '';
        const grant =
          (details.grantId ? await current.Grant.find(details.grantId) : undefined) ??
          new current.Grant({ accountId: sub, clientId });
        grant.addOIDCScope(details.params['scope'] ?? 'openid');
        const grantId = await grant.save();
        await current.interactionFinished(
          request,
          response,
          { login: { accountId: sub }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
      })().catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500).end(String(error));
      });
      return;
    }
    current.callback()(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: options.clients.map((client) => ({
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: client.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    async findAccount(_ctx: unknown, sub: string) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            ...(account.email === undefined ? {} : { email: account.email }),
            ...(account.emailVerified === undefined
              ? {}
              : { email_verified: account.emailVerified }),
            ...(account.name === undefined ? {} : { name: account.name }),
          };
        },
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['oidc-testing-cookie-key'] },
    pkce: { required: () => true },
    // Its own RS256 key (what most providers sign with; its built-in development keys warn).
    jwks: {
      keys: [
        {
          ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
            format: 'jwk',
          }),
          alg: 'RS256',
          use: 'sig',
          kid: 'oidc-testing',
        },
      ],
    },
    ttl: {
      Interaction: 600,
      Grant: 600,
      Session: 600,
      AccessToken: 600,
      IdToken: 600,
      AuthorizationCode: 60,
    },
  });
  started.provider = provider;
  // The tampering seam: the token endpoint's answer, after the provider made it.
  provider.use(async (ctx, next) => {
    await next();
    if (tamperNext && ctx.path === '/token' && ctx.body && typeof ctx.body === 'object') {
      const body = ctx.body as { id_token?: string };
      if (body.id_token) {
        tamperNext = false;
        ctx.body = { ...body, id_token: tamperSignature(body.id_token) };
      }
    }
  });

  return {
    issuer,
    addAccount(account) {
      accounts.set(account.sub, account);
    },
    async authorize(authorizationUrl, sub) {
      let url = new URL(authorizationUrl);
      logins.set(url.searchParams.get('state') ?? '', sub);
      const redirectUri = url.searchParams.get('redirect_uri') ?? '';
      const cookies = new Map<string, string>();
      for (let hop = 0; hop < 10; hop++) {
        const response = await fetch(url, {
          redirect: 'manual',
          headers: {
            cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; '),
          },
        });
        for (const header of response.headers.getSetCookie()) {
          const [pair = ''] = header.split(';');
          const eq = pair.indexOf('=');
          const name = pair.slice(0, eq).trim();
          const value = pair.slice(eq + 1).trim();
          if (/expires=Thu, 01 Jan 1970/i.test(header) || value === '') cookies.delete(name);
          else cookies.set(name, value);
        }
        const location = response.headers.get('location');
        if (!location)
          throw new Error(`the provider answered ${response.status}: ${await response.text()}`);
        url = new URL(location, url);
        if (redirectUri && url.toString().startsWith(redirectUri)) {
          const code = url.searchParams.get('code');
          const state = url.searchParams.get('state');
          if (!code || !state)
            throw new Error(`the provider redirected without a code: ${url.search}`);
          return { code, state, url };
        }
      }
      throw new Error('too many redirects at the test provider');
    },
    tamperNextIdToken() {
      tamperNext = true;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
