import type { Prisma, PrismaClient } from '@platform/db';
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
}

export function createAuthTransactions(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
): AuthTransactions {
  return {
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
}
