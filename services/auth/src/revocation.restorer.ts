import type { Logger } from '@platform/logger';
import type { RevokedSession, SessionRevocations } from '@platform/tokens';
import type { SessionRepository } from './session.repository';
import type { SessionService } from './session.service';

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

/** How often each auth instance looks for revocations that reached Redis but not the database. */
export const REVOCATION_SWEEP_MS = 30_000;

/**
 * Every `intervalMs` (one turn at a time): the sessions the Redis copy lists as ended that the
 * database still holds live are ended (`SessionService.completeListedRevocations`). The copy's
 * entries last longer than any turn's wait, so each is looked at before it ages out. A turn that
 * fails (Redis or the database unreachable) is logged and tried again at the next. Stops with
 * the returned function.
 */
export function startRevocationSweep(deps: {
  revocations: Pick<SessionRevocations, 'listed'>;
  sessions: Pick<SessionService, 'completeListedRevocations'>;
  logger: Pick<Logger, 'warn'>;
  intervalMs?: number;
}): () => void {
  let turn: Promise<void> | undefined;
  const sweep = async () => {
    const ended = await deps.sessions.completeListedRevocations(await deps.revocations.listed());
    if (ended > 0)
      deps.logger.warn(
        { ended },
        'sessions ended whose revocation had reached Redis but not the database (its request failed)',
      );
  };
  const timer = setInterval(() => {
    turn ??= sweep()
      .catch((error: unknown) =>
        deps.logger.warn(
          { err: error },
          'could not compare ended sessions with Redis; trying again',
        ),
      )
      .finally(() => {
        turn = undefined;
      });
  }, deps.intervalMs ?? REVOCATION_SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
