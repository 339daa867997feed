import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appErrorOf } from './testing/app-error';
import { wireOverFakes } from './testing/auth.wiring';

function setUp() {
  const { oneTimeTokens: service, mailedToken, fakes } = wireOverFakes();
  const { clock, mailer, oneTimeTokens: tokens } = fakes;
  return { clock, mailer, tokens, service, mailedToken };
}

describe('OneTimeTokenService', () => {
  describe('send', () => {
    it('mails a verification code valid for a day, storing only its hash', async () => {
      const { service, mailer, tokens, mailedToken } = setUp();
      await service.send('VERIFY_EMAIL', randomUUID(), 'ada@example.com');
      expect(mailer.sent).toEqual([
        {
          to: 'ada@example.com',
          subject: 'Verify your email address',
          text: `Use this code to verify your email address (valid for 24 hours):\n\n${mailedToken()}\n`,
        },
      ]);
      expect([...tokens.tokens.keys()]).not.toContain(mailedToken());
    });

    it('mails a reset code valid for 30 minutes, telling whoever did not ask to ignore it', async () => {
      const { service, mailer, mailedToken } = setUp();
      await service.send('RESET_PASSWORD', randomUUID(), 'ada@example.com');
      expect(mailer.sent).toEqual([
        {
          to: 'ada@example.com',
          subject: 'Reset your password',
          text: `Use this code to choose a new password (valid for 30 minutes):\n\n${mailedToken()}\n\nIf you did not ask for it, ignore this mail.\n`,
        },
      ]);
    });

    it('sends an account at most the hourly quota of each kind, quietly for resets', async () => {
      const { service, mailer, clock } = setUp();
      const userId = randomUUID();
      for (let n = 0; n < 8; n++) await service.send('RESET_PASSWORD', userId, 'ada@example.com');
      expect(mailer.sent).toHaveLength(5);
      for (let n = 0; n < 5; n++) await service.send('VERIFY_EMAIL', userId, 'ada@example.com');
      const refused = await appErrorOf(service.send('VERIFY_EMAIL', userId, 'ada@example.com'));
      expect(refused).toMatchObject({ code: 'RATE_LIMITED' });
      expect(refused.retryAfter).toBeGreaterThan(0);
      expect(mailer.sent).toHaveLength(10);
      clock.advance(3600);
      await service.send('RESET_PASSWORD', userId, 'ada@example.com');
      expect(mailer.sent).toHaveLength(11);
    });

    it('answers before the mail is delivered, and a mail that cannot be delivered fails nothing', async () => {
      const { service, mailer } = setUp();
      mailer.failing = true;
      await expect(
        service.send('RESET_PASSWORD', randomUUID(), 'ada@example.com'),
      ).resolves.toBeUndefined();
      expect(mailer.sent).toHaveLength(1);
    });
  });

  describe('consume', () => {
    it('gives the user of a mailed token once', async () => {
      const { service, mailedToken } = setUp();
      const userId = randomUUID();
      await service.send('VERIFY_EMAIL', userId, 'ada@example.com');
      expect(await service.consume('VERIFY_EMAIL', mailedToken())).toBe(userId);
      expect(await appErrorOf(service.consume('VERIFY_EMAIL', mailedToken()))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'token',
        message: 'token: is invalid, expired or already used',
      });
    });

    it('refuses a token for another purpose, a malformed one and an unknown one', async () => {
      const { service, mailedToken } = setUp();
      await service.send('VERIFY_EMAIL', randomUUID(), 'ada@example.com');
      for (const token of [mailedToken(), 'short', 'a'.repeat(43)]) {
        expect(await appErrorOf(service.consume('RESET_PASSWORD', token))).toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'token',
        });
      }
    });

    it('takes a reset token until 30 minutes have passed, and not after', async () => {
      const { service, clock, mailedToken } = setUp();
      const userId = randomUUID();
      await service.send('RESET_PASSWORD', userId, 'ada@example.com');
      const early = mailedToken();
      await service.send('RESET_PASSWORD', userId, 'ada@example.com');
      const late = mailedToken();
      clock.advance(30 * 60 - 1);
      expect(await service.consume('RESET_PASSWORD', early)).toBe(userId);
      clock.advance(1);
      expect((await appErrorOf(service.consume('RESET_PASSWORD', late))).code).toBe(
        'BAD_USER_INPUT',
      );
    });

    it('takes a verification token for a day', async () => {
      const { service, clock, mailedToken } = setUp();
      const userId = randomUUID();
      await service.send('VERIFY_EMAIL', userId, 'ada@example.com');
      clock.advance(24 * 3600 - 1);
      expect(await service.consume('VERIFY_EMAIL', mailedToken())).toBe(userId);
    });
  });
});
