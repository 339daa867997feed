import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuthTx } from './auth.transactions';
import { createCredentialRepository } from './credential.repository';
import { useAuthTestWorld } from './testing/auth.test-world';

describe('CredentialRepository against PostgreSQL', () => {
  const world = useAuthTestWorld();
  const repository = () => createCredentialRepository(world.db);
  const inTransaction = <T>(work: (client: AuthTx) => Promise<T>) =>
    world.transactions.run(({ client }) => work(client));
  const hashOf = async (userId: string) => (await repository().find(userId))?.passwordHash;

  it("finds a user's credential, and nothing for a user without one", async () => {
    const credential = await world.newCredential();
    expect(await repository().find(credential.userId)).toEqual(credential);
    expect(await repository().find(randomUUID())).toBeNull();
  });

  it('stores a first hash once, however many creations race, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const userId = randomUUID();
      const created = await Promise.all([
        repository().create(userId, 'hashed:first'),
        repository().create(userId, 'hashed:second'),
        repository().create(userId, 'hashed:third'),
      ]);
      expect(created.filter(Boolean)).toHaveLength(1);
      expect(await world.db.credential.count({ where: { userId } })).toBe(1);
    }
  });

  it('replaces a hash, and fails for a user without one', async () => {
    const { userId } = await world.newCredential();
    await inTransaction((client) => repository().update(client, userId, 'hashed:new'));
    expect(await hashOf(userId)).toBe('hashed:new');
    const missing = randomUUID();
    await expect(
      inTransaction((client) => repository().update(client, missing, 'hashed:new')),
    ).rejects.toThrow();
    expect(await hashOf(missing)).toBeUndefined();
  });

  it('upserts a hash: replaces it, or stores it for a user without one', async () => {
    const { userId } = await world.newCredential();
    const missing = randomUUID();
    await inTransaction(async (client) => {
      await repository().upsert(client, userId, 'hashed:reset');
      await repository().upsert(client, missing, 'hashed:first');
    });
    expect([await hashOf(userId), await hashOf(missing)]).toEqual(['hashed:reset', 'hashed:first']);
  });

  it('deletes a credential, and deleting none is no error', async () => {
    const { userId } = await world.newCredential();
    await inTransaction(async (client) => {
      await repository().delete(client, userId);
      await repository().delete(client, randomUUID());
    });
    expect(await repository().find(userId)).toBeNull();
  });
});
