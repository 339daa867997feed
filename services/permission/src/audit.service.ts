import type { AuditRow } from './audit.repository';
import type { RbacStore } from './rbac.store';

export interface AuditPage {
  /** Newest first. */
  entries: AuditRow[];
  hasNextPage: boolean;
}

/** Reading the audit log (every change writes its own entries, in its own transaction). */
export interface AuditService {
  /** Up to `first` entries, newest first, below the entry numbered `afterSeq` if given. */
  listEntries(first: number, afterSeq: bigint | null): Promise<AuditPage>;
}

export function createAuditService(deps: { store: Pick<RbacStore, 'audit'> }): AuditService {
  return {
    async listEntries(first, afterSeq) {
      const rows = await deps.store.audit.list(first + 1, afterSeq);
      return { entries: rows.slice(0, first), hasNextPage: rows.length > first };
    },
  };
}
