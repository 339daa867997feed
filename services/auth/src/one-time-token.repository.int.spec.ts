import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashOpaqueToken, newOpaqueToken } from './opaque-token';
import { createOneTimeTokenRepository } from './one-time-token.repository';
import { useAuthTestWorld } from './testing/auth.test-world';

describe('OneTimeTokenRepository against PostgreSQL', () => {
  const world = useAuthTestWorld();
  const repository = () => createOneTimeTokenRepository(world.db);
  const row = (tokenHash: string) =>
    world.db.oneTimeToken.findUniqueOrThrow({ where: { tokenHash } });

  it('stores a token that is used once, giving its user', async () => {
    const { token, hash } = newOpaqueToken();
    const userId = randomUUID();
    const expiresAt = new Date(Date.now() + 60_000);
    await repository().create({ tokenHash: hash, userId, purpose: 'RESET_PASSWORD', expiresAt });
    expect(await row(hash)).toMatchObject({ userId, expiresAt, usedAt: null });

    const at = new Date();
    expect(await repository().markUsed(hashOpaqueToken(token), 'RESET_PASSWORD', at)).toBe(userId);
    expect((await row(hash)).usedAt).toEqual(at);
    expect(await repository().markUsed(hash, 'RESET_PASSWORD', new Date())).toBeNull();
    expect((await row(hash)).usedAt).toEqual(at);
  });

  it('refuses a token for another purpose, an expired one and an unknown one, leaving them unused', async () => {
    const now = new Date();
    const other = await world.newOneTimeToken({ purpose: 'VERIFY_EMAIL' });
    const expired = await world.newOneTimeToken({ purpose: 'RESET_PASSWORD', expiresAt: now });
    for (const { row: token } of [other, expired]) {
      expect(await repository().markUsed(token.tokenHash, 'RESET_PASSWORD', now)).toBeNull();
      expect((await row(token.tokenHash)).usedAt).toBeNull();
    }
    expect(await repository().markUsed(newOpaqueToken().hash, 'VERIFY_EMAIL', now)).toBeNull();
  });

  it('accepts a token used several times at once exactly once, every time', async () => {
    for (let round = 0; round < 20; round++) {
      const { row: token } = await world.newOneTimeToken({ purpose: 'RESET_PASSWORD' });
      const users = await Promise.all(
        Array.from({ length: 4 }, () =>
          repository().markUsed(token.tokenHash, 'RESET_PASSWORD', new Date()),
        ),
      );
      expect(users.filter((user) => user !== null)).toEqual([token.userId]);
    }
  });
});
