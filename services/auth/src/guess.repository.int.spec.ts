import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createGuessRepository, type GuessBucket } from './guess.repository';
import { useAuthTestWorld } from './testing/auth.test-world';

const MINUTE = 60_000;

describe('GuessRepository against Redis', () => {
  const world = useAuthTestWorld();
  const repository = () => createGuessRepository(world.redis);
  const bucket = (limit: number, windowMs = MINUTE): GuessBucket => ({
    id: `test:${randomUUID()}`,
    limit,
    windowMs,
  });
  const held = (id: string) => world.redis.zcard(`auth:guesses:${id}`);

  it('records exactly the limit of 60 reservations racing for one bucket, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const tight = bucket(5);
      const loose = bucket(50);
      // Separate connections, so the reservations really arrive at Redis interleaved.
      const clients = Array.from({ length: 4 }, () => world.redis.duplicate());
      const repositories = clients.map(createGuessRepository);
      try {
        const waits = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            repositories[i % repositories.length]!.reserve(
              [tight, loose],
              randomUUID(),
              Date.now(),
            ),
          ),
        );
        expect(waits.filter((wait) => wait === 0)).toHaveLength(5);
        expect(await held(tight.id)).toBe(5);
        expect(await held(loose.id)).toBe(5);
      } finally {
        for (const client of clients) client.disconnect();
      }
    }
  });

  it('reserves in every bucket or in none', async () => {
    const full = bucket(1);
    const roomy = bucket(10);
    const now = Date.now();
    expect(await repository().reserve([full], 'first', now)).toBe(0);
    expect(await repository().reserve([roomy, full], 'second', now)).toBeGreaterThan(0);
    expect(await held(roomy.id)).toBe(0);
  });

  it('says how long until the oldest reservation of the fullest bucket ages out', async () => {
    const tight = bucket(2, MINUTE);
    const loose = bucket(2, 10 * MINUTE);
    const start = Date.now();
    await repository().reserve([tight, loose], 'a', start);
    await repository().reserve([tight, loose], 'b', start + 1_000);
    expect(await repository().reserve([tight, loose], 'c', start + 5_000)).toBe(
      10 * MINUTE - 5_000,
    );
  });

  it('ages reservations out of the window', async () => {
    const tight = bucket(2, MINUTE);
    const start = Date.now();
    await repository().reserve([tight], 'a', start);
    await repository().reserve([tight], 'b', start + 30_000);
    expect(await repository().reserve([tight], 'c', start + MINUTE - 1)).toBe(1);
    expect(await repository().reserve([tight], 'c', start + MINUTE)).toBe(0);
    expect(await repository().reserve([tight], 'd', start + MINUTE + 1)).toBe(29_999);
  });

  it('frees the place of a released reservation in every bucket it held', async () => {
    const tight = bucket(1);
    const loose = bucket(5);
    const now = Date.now();
    await repository().reserve([tight, loose], 'right password', now);
    await repository().release([tight.id, loose.id], 'right password');
    expect(await held(loose.id)).toBe(0);
    expect(await repository().reserve([tight, loose], 'next', now)).toBe(0);
  });

  it('lets the buckets expire from Redis once their window has passed', async () => {
    const tight = bucket(3, MINUTE);
    await repository().reserve([tight], 'a', Date.now());
    const ttl = await world.redis.pttl(`auth:guesses:${tight.id}`);
    expect(ttl).toBeGreaterThan(MINUTE - 5_000);
    expect(ttl).toBeLessThanOrEqual(MINUTE);
  });

  it('knows a device only for the account it signed in to, and only since the time asked about', async () => {
    const [account, other, device] = [randomUUID(), randomUUID(), randomUUID()];
    const now = Date.now();
    expect(await repository().isKnownDevice(account, device, now - MINUTE)).toBe(false);
    await repository().rememberDevice(account, device, now, { keep: 3, ttlSeconds: 3600 });
    expect(await repository().isKnownDevice(account, device, now - MINUTE)).toBe(true);
    expect(await repository().isKnownDevice(other, device, now - MINUTE)).toBe(false);
    expect(await repository().isKnownDevice(account, device, now)).toBe(false);
    expect(await world.redis.ttl(`auth:devices:${account}`)).toBeGreaterThan(3590);
  });

  it('keeps only the most recent devices of an account, and none past its lifetime', async () => {
    const account = randomUUID();
    const devices = ['a', 'b', 'c', 'd', 'e'];
    const start = Date.now();
    const remember = (device: string, at: number) =>
      repository().rememberDevice(account, device, at, { keep: 3, ttlSeconds: 3600 });
    for (const [i, device] of devices.entries()) await remember(device, start + i);
    await remember('b', start + 10); // used again: now the most recent
    const known = async () => {
      const all = [];
      for (const device of devices)
        if (await repository().isKnownDevice(account, device, 0)) all.push(device);
      return all;
    };
    expect(await known()).toEqual(['b', 'd', 'e']);
    await remember('f', start + 3600 * 1000 + 5);
    expect(await world.redis.zrange(`auth:devices:${account}`, '0', '-1')).toEqual(['b', 'f']);
  });
});
