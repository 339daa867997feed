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

  it('answers SERVICE_UNAVAILABLE to work whose turn does not come in time, and the next still waits for the running one', async () => {
    const inTurn = createTurns(5_000);
    const log: string[] = [];
    const [slow, late, next] = ['slow', 'late', 'next'].map((name) => gate(log, name));
    const running = inTurn('a', slow!.work);
    const refused = inTurn('a', late!.work);
    refused.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(4_000);
    const waiting = inTurn('a', next!.work);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(refused).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(log).toEqual(['slow']);
    slow!.finish();
    next!.finish();
    expect([await running, await waiting]).toEqual(['slow', 'next']);
    expect(log).toEqual(['slow', 'next']);
  });

  it('keeps the running one in line after the last waiting gave up: a newcomer still waits for it', async () => {
    const inTurn = createTurns(5_000);
    const log: string[] = [];
    const [slow, late, next] = ['slow', 'late', 'next'].map((name) => gate(log, name));
    const running = inTurn('a', slow!.work);
    const refused = inTurn('a', late!.work);
    refused.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(refused).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    const waiting = inTurn('a', next!.work);
    await vi.advanceTimersByTimeAsync(0);
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
