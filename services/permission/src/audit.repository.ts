import type { Prisma } from '@platform/db';

/** What an audit entry records of a change. */
export interface AuditRecord {
  /** Null: the platform itself. */
  actorId: string | null;
  action: string;
  target: string;
  details: { before?: unknown; after?: unknown; [key: string]: unknown };
}

export interface AuditRow {
  id: string;
  /** Insertion order: the log is paged by it (entries of one transaction share createdAt). */
  seq: bigint;
  actorId: string | null;
  action: string;
  target: string;
  details: unknown;
  createdAt: Date;
}

/** The queries on the audit log. */
export interface AuditRepository {
  append(record: AuditRecord): Promise<void>;
  /** Newest first, at most `limit`; `beforeSeq` continues below a page's last entry. */
  list(limit: number, beforeSeq: bigint | null): Promise<AuditRow[]>;
}

/** Queries through `db`: the client, or the transaction client of a change. */
export function createAuditRepository(db: Prisma.TransactionClient): AuditRepository {
  return {
    async append({ actorId, action, target, details }) {
      await db.auditEntry.create({
        data: { actorId, action, target, details: details as Prisma.InputJsonValue },
      });
    },

    async list(limit, beforeSeq) {
      return db.auditEntry.findMany({
        where: beforeSeq === null ? {} : { seq: { lt: beforeSeq } },
        orderBy: { seq: 'desc' },
        take: limit,
      });
    },
  };
}
