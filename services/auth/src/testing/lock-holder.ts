import { expect } from 'vitest';
import type { Database } from '@platform/db';
import { eventually } from '@platform/testing';
import type { AuthTransactions, AuthTx } from '../auth.transactions';

/** A transaction that took a lock and keeps it until released. */
export interface HeldLock {
  /** Ends the transaction (commits) and resolves once it has. */
  release(): Promise<void>;
}

export async function holdLock(
  transactions: AuthTransactions,
  take: (client: AuthTx) => Promise<unknown>,
): Promise<HeldLock> {
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let taken = () => {};
  const isTaken = new Promise<void>((resolve) => (taken = resolve));
  const done = transactions.run(async ({ client }) => {
    await take(client);
    taken();
    await released;
  });
  await Promise.race([isTaken, done]);
  return {
    async release() {
      release();
      await done;
    },
  };
}

/** Resolves once exactly one connection to this database waits for a lock (row or advisory). */
export async function untilOneWaitsForALock(db: Database): Promise<void> {
  await eventually(async () => {
    const [row] = await db.$queryRawUnsafe<{ waiting: number }[]>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    expect(row?.waiting).toBe(1);
  });
}
