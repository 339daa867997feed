import { randomUUID } from 'node:crypto';
import type { OneTimeTokenPurpose } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent, type EventEnvelope } from '@platform/events';
import type { Logger } from '@platform/logger';
import type { Mail, Mailer } from '@platform/mail';
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from './opaque-token';
import type { AuthTransactions, AuthTx } from './auth.transactions';
import type { GuessRepository } from './guess.repository';
import type { OneTimeTokenRepository } from './one-time-token.repository';

/** How long each kind of mailed token stays valid. */
export const ONE_TIME_TOKEN_TTL_SECONDS: Record<OneTimeTokenPurpose, number> = {
  VERIFY_EMAIL: 24 * 3600,
  RESET_PASSWORD: 30 * 60,
};

const MAILS: Record<OneTimeTokenPurpose, (token: string) => Omit<Mail, 'to'>> = {
  VERIFY_EMAIL: (token) => ({
    subject: 'Verify your email address',
    text: `Use this code to verify your email address (valid for 24 hours):\n\n${token}\n`,
  }),
  RESET_PASSWORD: (token) => ({
    subject: 'Reset your password',
    text: `Use this code to choose a new password (valid for 30 minutes):\n\n${token}\n\nIf you did not ask for it, ignore this mail.\n`,
  }),
};

const HOUR_MS = 3_600_000;

/** The consumer (of auth.password_reset_requested) that mails reset tokens. */
export const RESET_MAIL_CONSUMER = 'auth.password-reset-mail';

/** Single-use tokens sent by mail: email verification and password reset. */
export interface OneTimeTokenService {
  /** Issues a token (256 bits; only its hash is stored) and mails it to `email`. */
  send(purpose: OneTimeTokenPurpose, userId: string, email: string): Promise<void>;
  /**
   * Records a password reset request and answers: the same work, one outbox event, whether or
   * not there is an account (`account` undefined), so the answer's timing says nothing.
   * `sendRequestedReset` does the rest once the event is delivered.
   */
  requestReset(account: { userId: string; email: string } | undefined): Promise<void>;
  /**
   * Handles an auth.password_reset_requested event once (a redelivery changes nothing): for a
   * real account within its mail quota, issues a reset token and mails it.
   */
  sendRequestedReset(event: EventEnvelope<'auth.password_reset_requested'>): Promise<void>;
  /**
   * The user the token belongs to, now used up (in `tx` when given: used only if it commits);
   * BAD_USER_INPUT on `token` if it cannot be used.
   */
  consume(purpose: OneTimeTokenPurpose, token: string, tx?: AuthTx): Promise<string>;
  /** The user the token belongs to if it can be used now, changing nothing; else as consume. */
  holderOf(purpose: OneTimeTokenPurpose, token: string): Promise<string>;
  /**
   * Ends, in `tx`, every token of the user for `purpose` not used yet: a new password makes the
   * reset codes mailed before it worthless, so whoever else read one cannot take the account
   * back after its owner recovered it.
   */
  revokeAll(
    tx: AuthTx,
    purpose: OneTimeTokenPurpose,
    userId: string,
    createdBefore?: Date,
  ): Promise<void>;
}

export interface OneTimeTokenServiceDeps {
  tokens: OneTimeTokenRepository;
  transactions: AuthTransactions;
  mailer: Pick<Mailer, 'send'>;
  logger: Logger;
  /** Sliding windows in Redis (the password guard's): mails of one kind per account. */
  windows: Pick<GuessRepository, 'reserve'>;
  /** How many mails of one kind an account is sent per hour. */
  mailsPerHour: number;
  clock?: () => Date;
}

export function createOneTimeTokenService(deps: OneTimeTokenServiceDeps): OneTimeTokenService {
  const { tokens, mailer, logger } = deps;
  const clock = deps.clock ?? (() => new Date());

  /** Nobody can flood a mailbox through us: how long until the next mail of this kind may go. */
  function reserveMail(purpose: OneTimeTokenPurpose, userId: string): Promise<number> {
    const bucket = { id: `mail:${purpose}:${userId}`, limit: deps.mailsPerHour, windowMs: HOUR_MS };
    return deps.windows.reserve([bucket], randomUUID(), clock().getTime());
  }

  /** Stores a new token's hash (in `tx` if given); the token, to mail. */
  async function issue(purpose: OneTimeTokenPurpose, userId: string, tx?: AuthTx): Promise<string> {
    const { token, hash } = newOpaqueToken();
    const expiresAt = new Date(clock().getTime() + ONE_TIME_TOKEN_TTL_SECONDS[purpose] * 1000);
    await tokens.create({ tokenHash: hash, userId, purpose, expiresAt }, tx);
    return token;
  }

  /** In the background (with the mailer's retries): nobody waits for SMTP. */
  function mailInBackground(purpose: OneTimeTokenPurpose, email: string, token: string): void {
    mailer
      .send({ to: email, ...MAILS[purpose](token) })
      .catch((error: unknown) => logger.error({ err: error }, 'mail not delivered'));
  }

  return {
    async send(purpose, userId, email) {
      const waitMs = await reserveMail(purpose, userId);
      if (waitMs > 0) {
        // A reset says nothing either way (the caller may not own the address); a signed-in
        // user asking for a verification mail is told to wait.
        if (purpose === 'RESET_PASSWORD') {
          logger.warn({ userId, purpose }, 'mail quota reached; no token sent');
          return;
        }
        throw AppError.rateLimited(Math.ceil(waitMs / 1000));
      }
      const token = await issue(purpose, userId);
      mailInBackground(purpose, email, token);
    },

    async requestReset(account) {
      await deps.transactions.run((tx) =>
        tx.emit(
          createEvent('auth.password_reset_requested', {
            userId: account?.userId ?? null,
            email: account?.email ?? null,
          }),
        ),
      );
    },

    async sendRequestedReset(event) {
      const { userId, email } = event.payload;
      await deps.transactions.run(async (tx) => {
        if (!(await tokens.processOnce(tx.client, RESET_MAIL_CONSUMER, event.id))) return;
        if (!userId || !email) return; // no such account: nothing to send
        if ((await reserveMail('RESET_PASSWORD', userId)) > 0) {
          logger.warn({ userId, purpose: 'RESET_PASSWORD' }, 'mail quota reached; no token sent');
          return;
        }
        const token = await issue('RESET_PASSWORD', userId, tx.client);
        // Once the token is stored: a redelivered event neither stores nor mails another.
        tx.afterCommit(async () => mailInBackground('RESET_PASSWORD', email, token));
      });
    },

    revokeAll: (tx, purpose, userId, createdBefore) =>
      tokens.markAllUsed(tx, userId, purpose, clock(), createdBefore),

    async consume(purpose, token, tx) {
      const userId = isOpaqueToken(token)
        ? await tokens.markUsed(hashOpaqueToken(token), purpose, clock(), tx)
        : null;
      if (!userId) throw AppError.unusableToken();
      return userId;
    },

    async holderOf(purpose, token) {
      const userId = isOpaqueToken(token)
        ? await tokens.findUsable(hashOpaqueToken(token), purpose, clock())
        : null;
      if (!userId) throw AppError.unusableToken();
      return userId;
    },
  };
}
