import { describe, expect, it } from 'vitest';
import { RETIRED_KEY_PUBLISHED_MS } from './signing-key.service';
import { wireOverFakes } from './testing/auth.wiring';

const DAY_MS = 24 * 3600 * 1000;

function setUp() {
  const { signingKeys: service, fakes } = wireOverFakes();
  const { clock, signingKeys } = fakes;
  const advanceMs = (ms: number) => clock.advance(ms / 1000);
  return { advanceMs, signingKeys, service };
}

describe('SigningKeyService', () => {
  describe('ensureActiveKey', () => {
    it('creates a P-256 key on first start and publishes its public half', async () => {
      const { service } = setUp();
      const key = await service.ensureActiveKey(30 * DAY_MS);
      expect(key.algorithm).toBe('ES256');
      expect(key.privateKeyPem).toContain('BEGIN PRIVATE KEY');
      expect(await service.publishedKeys()).toEqual([
        expect.objectContaining({ kid: key.kid, kty: 'EC', crv: 'P-256', use: 'sig' }),
      ]);
    });

    it('keeps the key while it is younger than the maximum age', async () => {
      const { service, advanceMs } = setUp();
      const first = await service.ensureActiveKey(30 * DAY_MS);
      advanceMs(30 * DAY_MS - 1);
      expect((await service.ensureActiveKey(30 * DAY_MS)).kid).toBe(first.kid);
    });

    it('replaces an older key, which stays published for a day', async () => {
      const { service, advanceMs, signingKeys } = setUp();
      const first = await service.ensureActiveKey(30 * DAY_MS);
      advanceMs(30 * DAY_MS);
      const second = await service.ensureActiveKey(30 * DAY_MS);
      expect(second.kid).not.toBe(first.kid);
      expect(signingKeys.keys.find((key) => key.kid === first.kid)?.retiredAt).not.toBeNull();
      const kids = async () => (await service.publishedKeys()).map((jwk) => jwk.kid);
      expect(await kids()).toEqual([second.kid, first.kid]);
      advanceMs(RETIRED_KEY_PUBLISHED_MS - 1);
      expect(await kids()).toEqual([second.kid, first.kid]);
      advanceMs(1);
      expect(await kids()).toEqual([second.kid]);
    });
  });
});
