import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createPasswordGuard, DEVICES_PER_ACCOUNT, type GuessPolicy } from './password-guard';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { createFakeGuessRepository } from './testing/guess.fakes';

const POLICY: GuessPolicy = {
  perClient: 3,
  perClientWindowSeconds: 60,
  perAccount: 10,
  perAccountWindowSeconds: 600,
  deviceTokenTtlSeconds: 3600,
};
const HOME = { address: '198.51.100.1' };
const wrong = async () => false;
const right = async () => true;

function setUp() {
  const guesses = createFakeGuessRepository();
  const clock = createTestClock();
  const lines: string[] = [];
  const logger = createLogger({
    name: 'guard-test',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  });
  const guard = createPasswordGuard({ guesses, policy: POLICY, logger, clock: clock.now });
  /** Reservations held in every bucket together. */
  const held = () => [...guesses.buckets.values()].reduce((sum, bucket) => sum + bucket.size, 0);
  return { guard, guesses, clock, lines, held };
}

describe('PasswordGuard', () => {
  describe('check', () => {
    it('keeps a wrong guess counted in the client and account buckets, and gives a right one back', async () => {
      const { guard, held } = setUp();
      expect(await guard.check('user:a', HOME, wrong)).toBe(false);
      expect(held()).toBe(2);
      expect(await guard.check('user:a', HOME, right)).toBe(true);
      expect(held()).toBe(2);
    });

    it('gives the reservation back and passes the error on when the password cannot be checked', async () => {
      const { guard, held } = setUp();
      const broken = async (): Promise<boolean> => {
        throw new Error('database unreachable');
      };
      await expect(guard.check('user:a', HOME, broken)).rejects.toThrow('database unreachable');
      expect(held()).toBe(0);
    });

    it('does not run the check once the limit is reached, and says in whole seconds when to retry', async () => {
      const { guard, clock } = setUp();
      for (let i = 0; i < POLICY.perClient; i++) {
        await guard.check('user:a', HOME, wrong);
        clock.advance(10.2);
      }
      let checked = false;
      const refused = await appErrorOf(guard.check('user:a', HOME, async () => (checked = true)));
      // The first guess ages out 60 s after it was made, 30.6 s from now.
      expect(refused).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 30 });
      expect(checked).toBe(false);
    });

    it('treats a malformed or unknown device token as no device at all', async () => {
      const { guard, guesses } = setUp();
      for (const deviceToken of ['', 'x'.repeat(10_000), 'A'.repeat(43)]) {
        await guard.check('user:a', { ...HOME, deviceToken }, wrong);
      }
      expect([...guesses.buckets.keys()].every((id) => !id.startsWith('device:'))).toBe(true);
    });

    it('lets a right password through when its reservation cannot be given back, logging no secret', async () => {
      const { guard, guesses, lines } = setUp();
      guesses.release = async () => {
        throw new Error('redis connection lost');
      };
      expect(await guard.check('user:a', HOME, right)).toBe(true);
      expect(lines.join('')).toContain('could not give a password guess back');
      expect(lines.join('')).not.toMatch(/user:a|198\.51\.100\.1/);
    });
  });

  describe('deviceTokenFor', () => {
    it('remembers a new device token for the account, under its hash only', async () => {
      const { guard, guesses } = setUp();
      const token = await guard.deviceTokenFor('user:a', undefined);
      const [devices, ...others] = [...guesses.devices.values()];
      expect(others).toEqual([]);
      expect(devices?.size).toBe(1);
      expect([...devices!.keys()].join()).not.toContain(token);
    });

    it('gives a known device its own bucket instead of the client and account ones', async () => {
      const { guard, guesses } = setUp();
      const deviceToken = await guard.deviceTokenFor('user:a', undefined);
      await guard.check('user:a', { ...HOME, deviceToken }, wrong);
      expect([...guesses.buckets.keys()]).toEqual([expect.stringMatching(/^device:/)]);
    });

    it('forgets a device that has not signed in for the device token lifetime', async () => {
      const { guard, guesses, clock } = setUp();
      const deviceToken = await guard.deviceTokenFor('user:a', undefined);
      clock.advance(POLICY.deviceTokenTtlSeconds - 1);
      expect(await guard.deviceTokenFor('user:a', deviceToken)).toBe(deviceToken);
      clock.advance(POLICY.deviceTokenTtlSeconds);
      expect(await guard.deviceTokenFor('user:a', deviceToken)).not.toBe(deviceToken);
      await guard.check('user:a', { ...HOME, deviceToken }, wrong);
      expect([...guesses.buckets.keys()].some((id) => id.startsWith('device:'))).toBe(false);
    });

    it('remembers only the most recent devices of an account', async () => {
      const { guard, clock } = setUp();
      const first = await guard.deviceTokenFor('user:a', undefined);
      for (let i = 0; i < DEVICES_PER_ACCOUNT; i++) {
        clock.advance(1);
        await guard.deviceTokenFor('user:a', undefined);
      }
      expect(await guard.deviceTokenFor('user:a', first)).not.toBe(first);
    });
  });
});
