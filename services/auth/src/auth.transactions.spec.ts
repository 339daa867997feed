import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTurns } from './auth.transactions';

describe('createTurns', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  /** Work that runs until `finish` is called, noting when it started. */
  function gate(log: string[], name: string) {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    return {
      work: async () => {
        log.push(name);
        await done;
        return name;
      },
      finish: () => finish(),
    };
  }

  it("runs one key's work one at a time, in the order it came, and other keys' at once", async () => {
    const inTurn = createTurns(5_000);
    const log: string[] = [];
    const [a1, a2, a3, b1] = ['a1', 'a2', 'a3', 'b1'].map((name) => gate(log, name));
    const results = [
      inTurn('a', a1!.work),
      inTurn('a', a2!.work),
      inTurn('a', a3!.work),
      inTurn('b', b1!.work),
    ];
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['a1', 'b1']);
    a1!.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['a1', 'b1', 'a2']);
    a2!.finish();
    a3!.finish();
    b1!.finish();
    expect(await Promise.all(results)).toEqual(['a1', 'a2', 'a3', 'b1']);
  });

  // A newcomer arrives while the one that will give up still waits, or after it gave up (when
  // it was the last in line): either way it waits for the one still running.
  for (const newcomerAfterMs of [4_000, 5_000])
    it(`answers SERVICE_UNAVAILABLE to work whose turn does not come in time, and one coming ${newcomerAfterMs} ms later still waits for the one running`, async () => {
      const inTurn = createTurns(5_000);
      const log: string[] = [];
      const [slow, late, next] = ['slow', 'late', 'next'].map((name) => gate(log, name));
      const running = inTurn('a', slow!.work);
      const refused = inTurn('a', late!.work);
      refused.catch(() => undefined);
      await vi.advanceTimersByTimeAsync(newcomerAfterMs);
      const waiting = inTurn('a', next!.work);
      await vi.advanceTimersByTimeAsync(5_000 - newcomerAfterMs);
      await expect(refused).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      expect(log).toEqual(['slow']);
      slow!.finish();
      next!.finish();
      expect([await running, await waiting]).toEqual(['slow', 'next']);
      expect(log).toEqual(['slow', 'next']);
    });

  it('lets a key run at once again after its work failed', async () => {
    const inTurn = createTurns(5_000);
    await expect(inTurn('a', () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(await inTurn('a', async () => 'again')).toBe('again');
  });
});
