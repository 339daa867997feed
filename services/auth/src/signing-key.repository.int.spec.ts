import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuthTx } from './auth.transactions';
import { createSigningKeyRepository } from './signing-key.repository';
import { useAuthTestWorld } from './testing/auth.test-world';
import { holdLock, untilOneWaitsForALock } from './testing/lock-holder';

const HOUR = 3600 * 1000;
const hoursAgo = (hours: number) => new Date(Date.now() - hours * HOUR);

describe('SigningKeyRepository against PostgreSQL', () => {
  const world = useAuthTestWorld();
  const repository = () => createSigningKeyRepository(world.db);
  const inTransaction = <T>(work: (client: AuthTx) => Promise<T>) =>
    world.transactions.run(({ client }) => work(client));

  beforeEach(async () => {
    await world.db.signingKey.deleteMany();
  });

  it('finds the newest key not retired, and none when every key is retired', async () => {
    await world.newSigningKey({ createdAt: hoursAgo(3) });
    const newest = await world.newSigningKey({ createdAt: hoursAgo(2) });
    await world.newSigningKey({ createdAt: hoursAgo(1), retiredAt: hoursAgo(1) });
    expect(await inTransaction((client) => repository().findActive(client))).toEqual(newest);
    await world.db.signingKey.updateMany({ data: { retiredAt: new Date() } });
    expect(await inTransaction((client) => repository().findActive(client))).toBeNull();
  });

  it('stores a new key and retires an old one at the given time', async () => {
    const old = await world.newSigningKey();
    const kid = randomUUID();
    const publicJwk = { kid, kty: 'EC', crv: 'P-256', x: 'x', y: 'y', alg: 'ES256', use: 'sig' };
    const createdAt = new Date();
    const created = await inTransaction(async (client) => {
      await repository().retire(client, old.kid, createdAt);
      return repository().create(client, {
        kid,
        algorithm: 'ES256',
        publicJwk,
        privateKeyPem: 'pem',
        createdAt,
      });
    });
    expect(created).toEqual({
      kid,
      algorithm: 'ES256',
      publicJwk,
      privateKeyPem: 'pem',
      createdAt,
      retiredAt: null,
    });
    const retired = await world.db.signingKey.findUniqueOrThrow({ where: { kid: old.kid } });
    expect(retired.retiredAt).toEqual(createdAt);
  });

  it('lists the public keys not retired or retired after the given time, newest first', async () => {
    const active = await world.newSigningKey({ createdAt: hoursAgo(1) });
    const recent = await world.newSigningKey({ createdAt: hoursAgo(30), retiredAt: hoursAgo(1) });
    await world.newSigningKey({ createdAt: hoursAgo(60), retiredAt: hoursAgo(30) });
    const kids = (await repository().listPublic(hoursAgo(24))).map((jwk) => jwk.kid);
    expect(kids).toEqual([active.kid, recent.kid]);
  });

  it('holds off a second lock until the first transaction ends', async () => {
    const first = await holdLock(world.transactions, (client) => repository().lock(client));
    let secondLocked = false;
    const second = inTransaction((client) => repository().lock(client)).then(
      () => (secondLocked = true),
    );
    await untilOneWaitsForALock(world.db);
    expect(secondLocked).toBe(false);
    await first.release();
    await second;
    expect(secondLocked).toBe(true);
  });
});
