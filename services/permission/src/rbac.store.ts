import type { Prisma, PrismaClient } from '@platform/db';
import type { EventEnvelope } from '@platform/events';
import { enqueueEvent, processOnce, type OutboxRelay } from '@platform/outbox';
import { createAssignmentRepository, type AssignmentRepository } from './assignment.repository';
import { createAuditRepository, type AuditRepository } from './audit.repository';
import { createLeavingRepository, type LeavingRepository } from './leaving.repository';
import { createMfaStateRepository, type MfaStateRepository } from './mfa-state.repository';
import { createRoleRepository, type RoleRepository } from './role.repository';

/** The Postgres schema the permission service owns. */
export const RBAC_SCHEMA = 'rbac';

export interface RbacRepositories {
  roles: RoleRepository;
  assignments: AssignmentRepository;
  audit: AuditRepository;
  leaving: LeavingRepository;
  mfaStates: MfaStateRepository;
}

/** The service's outbox and the record of the events it consumed, inside a transaction. */
export interface RbacOutbox {
  /** Writes an event, to be published if and only if the transaction commits. */
  enqueue(event: EventEnvelope): Promise<void>;
  /** Records that `consumer` handled `eventId`; false when it already had (a redelivery). */
  processOnce(consumer: string, eventId: string): Promise<boolean>;
}

/** The repositories of one transaction, and its outbox. */
export interface RbacTransaction extends RbacRepositories {
  outbox: RbacOutbox;
}

/** The repositories outside any transaction (reads), and the way into one (changes). */
export interface RbacStore extends RbacRepositories {
  /**
   * Runs `work` in one transaction: all of it commits or none does. Once a transaction that
   * wrote an event has committed, wakes the outbox relay.
   */
  transaction<T>(work: (tx: RbacTransaction) => Promise<T>): Promise<T>;
}

function repositories(db: Prisma.TransactionClient): RbacRepositories {
  return {
    roles: createRoleRepository(db),
    assignments: createAssignmentRepository(db),
    audit: createAuditRepository(db),
    leaving: createLeavingRepository(db),
    mfaStates: createMfaStateRepository(db),
  };
}

export function createRbacStore(options: {
  db: PrismaClient;
  relay: Pick<OutboxRelay, 'kick'>;
}): RbacStore {
  const { db, relay } = options;
  return {
    ...repositories(db),
    async transaction(work) {
      let wroteEvent = false;
      const result = await db.$transaction((tx) =>
        work({
          ...repositories(tx),
          outbox: {
            async enqueue(event) {
              await enqueueEvent(tx, RBAC_SCHEMA, event);
              wroteEvent = true;
            },
            processOnce: (consumer, eventId) => processOnce(tx, RBAC_SCHEMA, consumer, eventId),
          },
        }),
      );
      if (wroteEvent) relay.kick();
      return result;
    },
  };
}
