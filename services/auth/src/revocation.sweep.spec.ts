import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { startRevocationSweep } from './revocation.restorer';
import { wireOverFakes } from './testing/auth.wiring';

describe(startRevocationSweep.name, () => {
  it('ends a session the Redis copy lists but the database holds live, turn after turn, and goes on after a failed turn', async () => {
    const { sessions, fakes } = wireOverFakes();
    const userId = randomUUID();
    const [phantom, later, kept] = [
      await sessions.open(userId, undefined),
      await sessions.open(userId, undefined),
      await sessions.open(userId, undefined),
    ];
    const warn = vi.fn();
    let failures = 1;
    const stop = startRevocationSweep({
      revocations: {
        listed: () =>
          failures-- > 0
            ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'))
            : fakes.revocations.listed(),
      },
      sessions,
      logger: { warn },
      intervalMs: 5,
    });
    const live = async () => (await sessions.listActive(userId)).map((one) => one.id).toSorted();
    try {
      // A revocation that reached Redis while its transaction rolled back.
      fakes.revocations.entries.set(phantom.sessionId, 960);
      await vi.waitFor(() =>
        expect(warn).toHaveBeenCalledWith(
          { ended: 1 },
          expect.stringContaining('reached Redis but not the database'),
        ),
      );
      expect(warn).toHaveBeenCalledWith(
        { err: expect.any(Error) as unknown },
        expect.stringContaining('trying again'),
      );
      expect(await live()).toEqual([later.sessionId, kept.sessionId].toSorted());
      // Another, later: found at a later turn.
      fakes.revocations.entries.set(later.sessionId, 960);
      await vi.waitFor(async () => expect(await live()).toEqual([kept.sessionId]));
    } finally {
      stop();
    }
  });
});
