import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@platform/logger';
import { monitorDependencies } from './dependency-monitor';

const logger = createLogger({ name: 'dependency-monitor-test', level: 'silent' });

describe('dependency monitor', () => {
  afterEach(() => vi.useRealTimers());

  it('keeps one check outstanding per dependency that stopped answering, and reports it down, then back', async () => {
    vi.useFakeTimers();
    let calls = 0;
    let answering = false;
    const waiting: (() => void)[] = [];
    const monitor = monitorDependencies({
      checks: [
        {
          name: 'postgresql',
          check: () => {
            calls += 1;
            if (answering) return Promise.resolve();
            return new Promise<void>((resolve) => waiting.push(resolve));
          },
        },
      ],
      logger,
      intervalMs: 100,
      timeoutMs: 50,
    });
    const changes: boolean[] = [];
    monitor.onChange((_, up) => changes.push(up));

    // Ten probe intervals without an answer: one check was sent, and the dependency is down
    // from the second late probe on.
    await vi.advanceTimersByTimeAsync(1_500);
    expect(calls).toBe(1);
    expect(changes).toEqual([true, false]);

    // It answers again (the waiting check too): it is up at the next probe, and later
    // probes ask again.
    answering = true;
    for (const answer of waiting) answer();
    await vi.advanceTimersByTimeAsync(300);
    expect(changes).toEqual([true, false, true]);
    expect(calls).toBeGreaterThanOrEqual(2);
    monitor.stop();
  });
});
