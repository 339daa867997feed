// An in-memory GuessRepository for unit tests. It keeps the promises the Redis one documents;
// guess.repository.int.spec.ts holds the real one to them, under real concurrency.
import type { GuessRepository } from '../guess.repository';

export interface FakeGuessRepository extends GuessRepository {
  /** Reservations per bucket id: reservation id -> time (ms). */
  readonly buckets: Map<string, Map<string, number>>;
  /** Per account: device token hash -> last sign-in (ms), oldest first. */
  readonly devices: Map<string, Map<string, number>>;
}

export function createFakeGuessRepository(): FakeGuessRepository {
  const buckets = new Map<string, Map<string, number>>();
  const devices = new Map<string, Map<string, number>>();
  const bucket = (id: string) => buckets.get(id) ?? buckets.set(id, new Map()).get(id)!;

  return {
    buckets,
    devices,
    async reserve(wanted, reservationId, nowMs) {
      let wait = 0;
      for (const { id, limit, windowMs } of wanted) {
        const entries = bucket(id);
        for (const [entry, at] of entries) if (at <= nowMs - windowMs) entries.delete(entry);
        if (entries.size >= limit) {
          // As the Redis script: room once all but limit - 1 have aged out.
          const times = [...entries.values()].sort((a, b) => a - b);
          const last = times[entries.size - limit] ?? nowMs;
          wait = Math.max(wait, last + windowMs - nowMs, 1);
        }
      }
      if (wait > 0) return wait;
      for (const { id } of wanted) bucket(id).set(reservationId, nowMs);
      return 0;
    },
    async release(ids, reservationId) {
      for (const id of ids) buckets.get(id)?.delete(reservationId);
    },
    async isKnownDevice(account, tokenHash, sinceMs) {
      return (devices.get(account)?.get(tokenHash) ?? -Infinity) > sinceMs;
    },
    async rememberDevice(account, tokenHash, nowMs, { keep, ttlSeconds }) {
      const known = devices.get(account) ?? devices.set(account, new Map()).get(account)!;
      known.delete(tokenHash);
      known.set(tokenHash, nowMs);
      for (const [hash, at] of known) if (at <= nowMs - ttlSeconds * 1000) known.delete(hash);
      while (known.size > keep) known.delete(known.keys().next().value!);
    },
    async forgetDevices(account) {
      devices.delete(account);
    },
  };
}
