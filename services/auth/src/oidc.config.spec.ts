import { describe, expect, it } from 'vitest';
import { parseOidcProviders } from './oidc.config';

const GOOD = {
  OIDC_PROVIDERS: 'google, corp',
  OIDC_REDIRECT_URIS: 'https://app.example.com/oidc/callback',
  OIDC_GOOGLE_ISSUER: 'https://accounts.google.com',
  OIDC_GOOGLE_CLIENT_ID: 'google-client',
  OIDC_GOOGLE_CLIENT_SECRET: 'google-secret',
  OIDC_CORP_ISSUER: 'https://sso.corp.example',
  OIDC_CORP_CLIENT_ID: 'corp-client',
  OIDC_CORP_SCOPES: 'openid profile',
  OIDC_CORP_REDIRECT_URIS: 'https://admin.example.com/callback',
};

describe('parseOidcProviders', () => {
  it('reads each listed provider from its OIDC_<NAME>_* variables', () => {
    const { providers, problems } = parseOidcProviders(GOOD, true);
    expect(problems).toEqual([]);
    expect(providers).toEqual([
      {
        name: 'google',
        issuer: 'https://accounts.google.com',
        clientId: 'google-client',
        clientSecret: 'google-secret',
        scopes: ['openid', 'email', 'profile'],
        redirectUris: ['https://app.example.com/oidc/callback'],
      },
      {
        name: 'corp',
        issuer: 'https://sso.corp.example',
        clientId: 'corp-client',
        clientSecret: undefined,
        // openid and email are always asked for: the account is found by sub, made by a verified email.
        scopes: ['email', 'openid', 'profile'],
        redirectUris: [
          'https://app.example.com/oidc/callback',
          'https://admin.example.com/callback',
        ],
      },
    ]);
  });

  it('is empty without OIDC_PROVIDERS', () => {
    expect(parseOidcProviders({}, true)).toEqual({ providers: [], problems: [] });
  });

  it('reports every problem at once: names, missing issuer or client id, no redirect URI', () => {
    const { problems } = parseOidcProviders(
      { OIDC_PROVIDERS: 'Bad-Name,corp,corp', OIDC_CORP_ISSUER: 'not a url' },
      false,
    );
    expect(problems).toEqual([
      expect.stringContaining('OIDC_PROVIDERS: "Bad-Name"'),
      'OIDC_CORP_ISSUER: is not a URL',
      'OIDC_CORP_CLIENT_ID: is required (provider "corp")',
      expect.stringContaining('OIDC_CORP_REDIRECT_URIS: provider "corp" has no redirect URI'),
      'OIDC_PROVIDERS: "corp" is listed twice',
    ]);
  });

  it('allows http only on localhost and only outside production', () => {
    const local = {
      ...GOOD,
      OIDC_PROVIDERS: 'google',
      OIDC_GOOGLE_ISSUER: 'http://127.0.0.1:9000',
      OIDC_REDIRECT_URIS: 'http://localhost:3000/callback',
    };
    expect(parseOidcProviders(local, false).problems).toEqual([]);
    expect(parseOidcProviders(local, true).problems).toEqual([
      'OIDC_REDIRECT_URIS: "http://localhost:3000/callback" must be https',
      'OIDC_GOOGLE_ISSUER: must be https',
    ]);
    const remote = { ...local, OIDC_GOOGLE_ISSUER: 'http://idp.example.com' };
    expect(parseOidcProviders(remote, false).problems).toEqual([
      'OIDC_GOOGLE_ISSUER: must be https (or http on localhost)',
    ]);
  });
});
