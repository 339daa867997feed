import type { RevokedSession, SessionRevocations } from '@platform/tokens';
import type { SessionRepository } from './session.repository';

/**
 * Rebuilds the Redis copy of ended sessions from the database after Redis lost it (see
 * docs/resilience.md): every session ended within the entries' lifetime, each with the time it
 * has left, written with the completeness marker in one MULTI/EXEC.
 */
export interface RevocationRestorer {
  /** Rebuilds now; concurrent calls in this process share one rebuild. Says how many entries. */
  restore(): Promise<number>;
  /** At start: rebuilds if the marker is missing (Redis restarted while nothing ran). */
  restoreIfLost(): Promise<boolean>;
}

export function createRevocationRestorer(deps: {
  sessions: Pick<SessionRepository, 'endedSince'>;
  revocations: Pick<SessionRevocations, 'restore' | 'isComplete'>;
  /** How long an entry stays after its session ended (`revocationTtlSeconds`). */
  entryTtlSeconds: number;
  clock?: () => Date;
}): RevocationRestorer {
  const { sessions, revocations, entryTtlSeconds } = deps;
  const clock = deps.clock ?? (() => new Date());
  let inflight: Promise<number> | undefined;

  async function rebuild(): Promise<number> {
    const now = clock().getTime();
    const ended = await sessions.endedSince(new Date(now - entryTtlSeconds * 1000));
    const entries: RevokedSession[] = ended.map(({ id, revokedAt }) => ({
      sessionId: id,
      // What is left of its lifetime, rounded up: an entry never goes before its tokens.
      ttlSeconds: Math.max(
        1,
        Math.ceil((revokedAt.getTime() + entryTtlSeconds * 1000 - now) / 1000),
      ),
    }));
    await revocations.restore(entries);
    return entries.length;
  }

  function restore(): Promise<number> {
    inflight ??= rebuild().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  return {
    restore,
    async restoreIfLost() {
      if (await revocations.isComplete()) return false;
      await restore();
      return true;
    },
  };
}
