import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent, type EventEnvelope } from '@platform/events';
import { appErrorOf } from './testing/app-error';
import { wireOverFakes } from './testing/auth.wiring';

function setUp() {
  const { oneTimeTokens: service, mailedToken, fakes } = wireOverFakes();
  const { clock, mailer, oneTimeTokens: tokens, transactions } = fakes;
  return { clock, mailer, tokens, transactions, service, mailedToken };
}

const resetRequested = (userId: string | null, email: string | null) =>
  createEvent('auth.password_reset_requested', { userId, email });

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

  describe('requestReset', () => {
    it('records one event and nothing else, whether or not there is an account', async () => {
      const { service, mailer, tokens, transactions } = setUp();
      const userId = randomUUID();
      await service.requestReset({ userId, email: 'ada@example.com' });
      await service.requestReset(undefined);
      expect(transactions.events.map((event) => [event.type, event.payload])).toEqual([
        ['auth.password_reset_requested', { userId, email: 'ada@example.com' }],
        ['auth.password_reset_requested', { userId: null, email: null }],
      ]);
      expect(mailer.sent).toEqual([]);
      expect(tokens.tokens.size).toBe(0);
    });
  });

  describe('sendRequestedReset', () => {
    it('mails a reset code to a real account, once however often the event is delivered', async () => {
      const { service, mailer, tokens, mailedToken } = setUp();
      const userId = randomUUID();
      const event = resetRequested(userId, 'ada@example.com');
      await service.sendRequestedReset(event);
      await service.sendRequestedReset(event);
      expect(mailer.sent).toHaveLength(1);
      expect(mailer.sent[0]).toMatchObject({
        to: 'ada@example.com',
        subject: 'Reset your password',
      });
      expect(tokens.tokens.size).toBe(1);
      expect(await service.consume('RESET_PASSWORD', mailedToken())).toBe(userId);
    });

    it('sends nothing for an address without an account', async () => {
      const { service, mailer, tokens } = setUp();
      await service.sendRequestedReset(resetRequested(null, null));
      expect(mailer.sent).toEqual([]);
      expect(tokens.tokens.size).toBe(0);
    });

    it('keeps to the hourly mail quota of the account, quietly', async () => {
      const { service, mailer, tokens } = setUp();
      const userId = randomUUID();
      for (let n = 0; n < 7; n++)
        await service.sendRequestedReset(resetRequested(userId, 'ada@example.com'));
      expect(mailer.sent).toHaveLength(5);
      expect(tokens.tokens.size).toBe(5);
    });

    it('finishes even when the mail cannot be delivered', async () => {
      const { service, mailer } = setUp();
      mailer.failing = true;
      const event: EventEnvelope<'auth.password_reset_requested'> = resetRequested(
        randomUUID(),
        'ada@example.com',
      );
      await expect(service.sendRequestedReset(event)).resolves.toBeUndefined();
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
