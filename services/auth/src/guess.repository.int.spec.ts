import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createGuessRepository, type GuessBucket } from './guess.repository';
import { useAuthTestWorld } from './testing/auth.test-world';

const MINUTE = 60_000;

describe('GuessRepository against Redis', () => {
  const world = useAuthTestWorld();
  const repository = () => createGuessRepository(world.redis);

  // The buckets' own rules (sliding windows) are tested in @platform/redis.
  it('keeps guesses in their buckets, apart from every other counter', async () => {
    const bucket: GuessBucket = { id: `test:${randomUUID()}`, limit: 1, windowMs: MINUTE };
    expect(await repository().reserve([bucket], 'a', Date.now())).toBe(0);
    expect(await world.redis.zcard(`auth:guesses:${bucket.id}`)).toBe(1);
    expect(await repository().reserve([bucket], 'b', Date.now())).toBeGreaterThan(0);
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
