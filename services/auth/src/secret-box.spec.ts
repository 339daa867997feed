import { randomBytes } from 'node:crypto';
import { parseEnv } from '@platform/config';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEVELOPMENT_MFA_KEYS, mfaEnv, mfaRules } from './mfa.config';
import { createSecretBox, parseSecretKeys } from './secret-box';

const keyText = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
const [old, current] = [keyText('k1'), keyText('k2')];

describe('SecretBox', () => {
  it('seals with the first key and opens what it sealed', () => {
    const box = createSecretBox(parseSecretKeys(current));
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'user-1');
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(box.keyIdOf(sealed)).toBe('k2');
    expect(box.open(sealed, 'user-1')).toBe('JBSWY3DPEHPK3PXP');
    expect(box.seal('JBSWY3DPEHPK3PXP', 'user-1')).not.toBe(sealed);
  });

  it('still opens secrets sealed with an older key after rotation', () => {
    const sealed = createSecretBox(parseSecretKeys(old)).seal('secret', 'user-1');
    const rotated = createSecretBox(parseSecretKeys(`${current},${old}`));
    expect(rotated.open(sealed, 'user-1')).toBe('secret');
    expect(rotated.keyIdOf(rotated.seal('secret', 'user-1'))).toBe('k2');
    expect(() => createSecretBox(parseSecretKeys(current)).open(sealed, 'user-1')).toThrow(
      /unknown key "k1"/,
    );
  });

  it('refuses a tampered value and one copied to another owner', () => {
    const box = createSecretBox(parseSecretKeys(current));
    const sealed = box.seal('secret', 'user-1');
    expect(() => box.open(sealed, 'user-2')).toThrow();
    const [id, iv, data, tag] = sealed.split('.');
    const flipped = Buffer.from(data!, 'base64url');
    flipped[0]! ^= 1;
    expect(() =>
      box.open([id, iv, flipped.toString('base64url'), tag].join('.'), 'user-1'),
    ).toThrow();
  });

  it('names what is wrong with a key list, never the key', () => {
    expect(() => parseSecretKeys('k1:c2hvcnQ=')).toThrow(/must be 32 bytes/);
    expect(() => parseSecretKeys('no-id')).toThrow(/<id>:<base64/);
    expect(() => parseSecretKeys(`${current},${current}`)).toThrow(/unique/);
  });
});

describe('MFA configuration', () => {
  const shape = { NODE_ENV: z.enum(['development', 'production', 'test']), ...mfaEnv };

  it('uses the development key outside production', () => {
    expect(parseEnv(shape, { NODE_ENV: 'development' }, mfaRules).MFA_ENCRYPTION_KEYS).toBe(
      undefined,
    );
    expect(DEVELOPMENT_MFA_KEYS).toMatch(/^dev:/);
  });

  it('refuses to start in production without MFA_ENCRYPTION_KEYS, or with the development key', () => {
    expect(() => parseEnv(shape, { NODE_ENV: 'production' }, mfaRules)).toThrow(
      /MFA_ENCRYPTION_KEYS: is required in production/,
    );
    expect(() =>
      parseEnv(
        shape,
        { NODE_ENV: 'production', MFA_ENCRYPTION_KEYS: DEVELOPMENT_MFA_KEYS },
        mfaRules,
      ),
    ).toThrow(/development key/);
    // The same (public) key bytes under another id, behind a real key, are refused too.
    const renamed = `${current},old:${DEVELOPMENT_MFA_KEYS.slice('dev:'.length)}`;
    expect(() =>
      parseEnv(shape, { NODE_ENV: 'production', MFA_ENCRYPTION_KEYS: renamed }, mfaRules),
    ).toThrow(/development key/);
    expect(
      parseEnv(shape, { NODE_ENV: 'production', MFA_ENCRYPTION_KEYS: current }, mfaRules)
        .MFA_ENCRYPTION_KEYS,
    ).toBe(current);
  });

  it('refuses a malformed key list', () => {
    expect(() =>
      parseEnv(shape, { NODE_ENV: 'test', MFA_ENCRYPTION_KEYS: 'k1:abc' }, mfaRules),
    ).toThrow(/MFA_ENCRYPTION_KEYS: key "k1" must be 32 bytes/);
  });
});
