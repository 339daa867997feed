import type { Prisma, PrismaClient } from '@platform/db';
import { AppError } from '@platform/errors';
import type { EventEnvelope } from '@platform/events';
import { enqueueEvent, type OutboxRelay } from '@platform/outbox';

/** The auth service's Postgres schema (and outbox). */
export const AUTH_SCHEMA = 'auth';

/** The client of one transaction: repository statements that must commit together take it. */
export type AuthTx = Prisma.TransactionClient;

/** One transaction of a use case. */
export interface AuthTransaction {
  readonly client: AuthTx;
  /** Writes an event to the outbox in this transaction: it is published if and only if it commits. */
  emit(event: EventEnvelope): Promise<void>;
  /**
   * Runs once the transaction committed, before `run` resolves (the Redis copy of what it
   * decided); a failure fails the call, the commit stands.
   */
  afterCommit(effect: () => Promise<void>): void;
}

/** Where the use cases draw their transaction boundaries. */
export interface AuthTransactions {
  run<T>(work: (tx: AuthTransaction) => Promise<T>): Promise<T>;
  /**
   * The last step of a sign-in, which takes the user's lock (`lockUser`): it waits for that
   * user's sign-ins already under way in this process before it asks for one of the pool's
   * transaction slots, so a burst of one account's sign-ins holds one slot per instance, not
   * all of them, and other users' transactions are not kept waiting behind that account's
   * lock. SERVICE_UNAVAILABLE if its turn does not come within USER_QUEUE_WAIT_MS. (Changes of
   * how a user signs in need the user's session and are not queued: a sign-in racing one in
   * this process meets it at the lock, as across instances.)
   */
  runFor<T>(userId: string, work: (tx: AuthTransaction) => Promise<T>): Promise<T>;
}

/**
 * How long a sign-in waits for the same user's earlier ones: well inside the caller's deadline
 * (the subgraphs' gRPC calls give up after 5 s, and the password check and the wait for a
 * transaction slot come before and after this), so a turn rarely comes for a caller gone.
 */
export const USER_QUEUE_WAIT_MS = 3_000;

export function createAuthTransactions(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
): AuthTransactions {
  const inUsersTurn = createTurns(USER_QUEUE_WAIT_MS);
  const transactions: AuthTransactions = {
    runFor: (userId, work) => inUsersTurn(userId, () => transactions.run(work)),
    async run(work) {
      let emitted = 0;
      const effects: (() => Promise<void>)[] = [];
      const result = await db.$transaction((client) =>
        work({
          client,
          async emit(event) {
            await enqueueEvent(client, AUTH_SCHEMA, event);
            emitted++;
          },
          afterCommit(effect) {
            effects.push(effect);
          },
        }),
      );
      // The relay would find the events at its next poll; this publishes them now.
      if (emitted > 0) relay.kick();
      for (const effect of effects) await effect();
      return result;
    },
  };
  return transactions;
}

/**
 * Runs work in turn per key: each waits for the ones of its key that came before it (at most
 * `waitMs`, then SERVICE_UNAVAILABLE), keys never wait on each other, and a key is forgotten
 * once nothing of it runs or waits.
 */
export function createTurns(waitMs: number) {
  const lastOf = new Map<string, Promise<void>>();
  return async function inTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = lastOf.get(key);
    let finished!: () => void;
    const mine = new Promise<void>((resolve) => (finished = resolve));
    // The next in line waits for this one and for every one before it (one that gave up
    // waiting is finished, the one it waited for may not be).
    const last = before ? before.then(() => mine) : mine;
    lastOf.set(key, last);
    // Forgotten once this one and every one before it are done (not when this one gives up
    // waiting: the one it waited for may still run), unless another came in line since.
    void last.then(() => {
      if (lastOf.get(key) === last) lastOf.delete(key);
    });
    try {
      if (before) await withinTime(before, waitMs);
      return await work();
    } finally {
      finished();
    }
  };
}

function withinTime(turn: Promise<void>, waitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(AppError.unavailable(new Error(`no turn within ${waitMs} ms`))),
      waitMs,
    );
    void turn.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
