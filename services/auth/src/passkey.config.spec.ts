import { parseEnv } from '@platform/config';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { passkeyEnv, passkeyRules, relyingPartyOf } from './passkey.config';

describe('passkey configuration', () => {
  const shape = { NODE_ENV: z.enum(['development', 'production', 'test']), ...passkeyEnv };

  it('binds passkeys to localhost outside production when nothing is set', () => {
    const env = parseEnv(shape, { NODE_ENV: 'development' }, passkeyRules);
    expect(relyingPartyOf(env)).toEqual({
      id: 'localhost',
      name: 'Platform',
      origins: ['http://localhost:3000', 'http://localhost:4000', 'http://localhost:5173'],
    });
    expect(env.WEBAUTHN_CHALLENGE_TTL).toBe(120);
  });

  it('refuses to start in production without the relying party id and origins', () => {
    expect(() => parseEnv(shape, { NODE_ENV: 'production' }, passkeyRules)).toThrow(
      /WEBAUTHN_RP_ID: is required in production[\s\S]*WEBAUTHN_ORIGINS: is required in production/,
    );
    const env = parseEnv(
      shape,
      {
        NODE_ENV: 'production',
        WEBAUTHN_RP_ID: 'example.com',
        WEBAUTHN_RP_NAME: 'Example',
        WEBAUTHN_ORIGINS: 'https://example.com, https://app.example.com',
      },
      passkeyRules,
    );
    expect(relyingPartyOf(env)).toEqual({
      id: 'example.com',
      name: 'Example',
      origins: ['https://example.com', 'https://app.example.com'],
    });
  });

  it('refuses origins that are not bare https origins (http only on localhost)', () => {
    for (const origins of ['http://example.com', 'https://example.com/app', 'example.com'])
      expect(() =>
        parseEnv(shape, { NODE_ENV: 'test', WEBAUTHN_ORIGINS: origins }, passkeyRules),
      ).toThrow(/WEBAUTHN_ORIGINS/);
  });
});
