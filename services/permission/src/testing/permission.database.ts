// Test-only: the integration tests' database, one per test file (createTestRun), migrated.
import { afterAll, beforeAll, expect } from 'vitest';
import { connectDatabase, type Database, type Prisma } from '@platform/db';
import { isAppError } from '@platform/errors';
import { createTestRun, eventually, holdOpen, type Held, type TestRun } from '@platform/testing';

export interface TestDatabase {
  readonly run: TestRun;
  readonly db: Database;
}

/** Opens an isolated database before the file's tests and drops it after them. */
export function useTestDatabase(): TestDatabase {
  let opened: TestDatabase | undefined;
  const current = (): TestDatabase => {
    if (!opened) throw new Error('the test database is open only inside tests');
    return opened;
  };
  beforeAll(async () => {
    const run = await createTestRun();
    const db = await connectDatabase({ databaseUrl: run.databaseUrl });
    opened = { run, db };
  });
  afterAll(async () => {
    await opened?.db.$disconnect();
    await opened?.run.close();
  });
  return {
    get run() {
      return current().run;
    },
    get db() {
      return current().db;
    },
  };
}

/** What a call came to: its value, or its error's code (INTERNAL for an unexpected error). */
export type Outcome<T> = { value: T } | { code: string; message: string };

/** Starts every call at once and waits for all of them, failed or not. */
export async function concurrently<T>(calls: readonly (() => Promise<T>)[]): Promise<Outcome<T>[]> {
  const settled = await Promise.allSettled(calls.map((call) => call()));
  return settled.map((result) => {
    if (result.status === 'fulfilled') return { value: result.value };
    const error = result.reason as Error;
    return { code: isAppError(error) ? error.code : 'INTERNAL', message: error.message };
  });
}

/** The codes of the calls that failed, and "ok" for the others, sorted. */
export const codesOf = (outcomes: readonly Outcome<unknown>[]): string[] =>
  outcomes.map((outcome) => ('code' in outcome ? outcome.code : 'ok')).sort();

/** What each call answered, or its error's code, sorted (false before true). */
export const answersOf = (outcomes: readonly Outcome<boolean>[]): (boolean | string)[] =>
  outcomes.map((outcome) => ('value' in outcome ? outcome.value : outcome.code)).sort();

/** Starts `call` twice at once; answers what the two calls answered, sorted. */
export async function twiceAtOnce(call: () => Promise<boolean>): Promise<(boolean | string)[]> {
  return answersOf(await concurrently([call, call]));
}

/** Opens a transaction of its own on `db` that runs `take` and then waits to be released. */
export function holdLock(
  db: Database,
  take: (tx: Prisma.TransactionClient) => Promise<unknown>,
): Promise<Held> {
  return holdOpen((hold) =>
    db.$transaction(
      async (tx) => {
        await take(tx);
        await hold();
      },
      { timeout: 20_000 },
    ),
  );
}

/** Resolves once exactly `count` connections to this database wait for a lock. */
export async function untilWaitingForLocks(db: Database, count: number): Promise<void> {
  await eventually(async () => {
    const [row] = await db.$queryRawUnsafe<{ waiting: number }[]>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    expect(row?.waiting).toBe(count);
  });
}
