import { expect } from 'vitest';
import type { Database } from '@platform/db';
import { eventually, holdOpen, type Held } from '@platform/testing';
import type { AuthTransactions, AuthTx } from '../auth.transactions';

/** A transaction that took a lock with `take` and keeps it until released. */
export function holdLock(
  transactions: AuthTransactions,
  take: (client: AuthTx) => Promise<unknown>,
): Promise<Held> {
  return holdOpen((hold) =>
    transactions.run(async ({ client }) => {
      await take(client);
      await hold();
    }),
  );
}

/** Resolves once exactly one connection to this database waits for a lock (row or advisory). */
export function untilOneWaitsForALock(db: Database): Promise<void> {
  return untilWaitingForLocks(db, 1);
}

/** Resolves once exactly `count` connections to this database wait for a lock. */
export async function untilWaitingForLocks(db: Database, count: number): Promise<void> {
  await eventually(async () => expect(await lockWaiters(db)).toBe(count));
}

/** How many connections to this database wait for a lock (row or advisory) now. */
export async function lockWaiters(db: Database): Promise<number> {
  const [row] = await db.$queryRawUnsafe<{ waiting: number }[]>(
    `SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return row?.waiting ?? 0;
}

/**
 * Holds a lock (taken with `take`) while `first` and then `second` start and queue for it, then
 * lets them through in that order: the interleaving where the first has made all its checks
 * before the second commits. Both outcomes, settled.
 */
export async function inLockOrder<A, B>(
  transactions: AuthTransactions,
  db: Database,
  take: (client: AuthTx) => Promise<unknown>,
  first: () => Promise<A>,
  second: () => Promise<B>,
): Promise<[PromiseSettledResult<A>, PromiseSettledResult<B>]> {
  const held = await holdLock(transactions, take);
  const started: Promise<unknown>[] = [];
  try {
    const a = first();
    started.push(a);
    a.catch(() => undefined);
    await untilOneWaitsForALock(db);
    const b = second();
    started.push(b);
    b.catch(() => undefined);
    await untilWaitingForLocks(db, 2);
    await held.release();
    return await Promise.allSettled([a, b]);
  } finally {
    // On a failed wait, let whatever queued finish before the next test counts waiters.
    await held.release().catch(() => undefined);
    await Promise.allSettled(started);
  }
}
