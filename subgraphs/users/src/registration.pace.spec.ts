import { describe, expect, it } from 'vitest';
import { createRegistrationPace } from './registration.pace';

function setUp(random = 0) {
  const slept: number[] = [];
  const pace = createRegistrationPace({
    samples: 3,
    initialMs: 150,
    random: () => random,
    sleep: async (ms) => void slept.push(ms),
  });
  return { pace, slept };
}

describe('RegistrationPace', () => {
  it('holds a refusal until as long after its start as a recent success took', async () => {
    const { pace, slept } = setUp(0.5);
    for (const ms of [100, 120, 140]) pace.record(ms);
    await pace.padRefusal(() => 20);
    expect(slept).toEqual([100]); // the middle sample, 120, less the 20 already spent
  });

  it('draws from the most recent successes only', async () => {
    const { pace, slept } = setUp(0);
    for (const ms of [500, 100, 120, 140]) pace.record(ms); // 500 was overwritten
    await pace.padRefusal(() => 0);
    expect(slept).toEqual([140]); // slot 0 now holds the fourth sample
  });

  it('assumes initialMs before any success, and never waits for a refusal that took longer', async () => {
    const { pace, slept } = setUp();
    await pace.padRefusal(() => 30);
    pace.record(50);
    await pace.padRefusal(() => 80);
    expect(slept).toEqual([120]);
  });
});
