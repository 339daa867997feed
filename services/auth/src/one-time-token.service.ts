import { randomUUID } from 'node:crypto';
import type { OneTimeTokenPurpose } from '@platform/db';
import { AppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { Mail, Mailer } from '@platform/mail';
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from './opaque-token';
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

/** Single-use tokens sent by mail: email verification and password reset. */
export interface OneTimeTokenService {
  /** Issues a token (256 bits; only its hash is stored) and mails it to `email`. */
  send(purpose: OneTimeTokenPurpose, userId: string, email: string): Promise<void>;
  /** The user the token belongs to, now used up; BAD_USER_INPUT on `token` if it cannot be used. */
  consume(purpose: OneTimeTokenPurpose, token: string): Promise<string>;
}

export interface OneTimeTokenServiceDeps {
  tokens: OneTimeTokenRepository;
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

  return {
    async send(purpose, userId, email) {
      // Nobody can flood a mailbox through us: beyond the hourly quota no token is issued.
      const bucket = {
        id: `mail:${purpose}:${userId}`,
        limit: deps.mailsPerHour,
        windowMs: HOUR_MS,
      };
      const waitMs = await deps.windows.reserve([bucket], randomUUID(), clock().getTime());
      if (waitMs > 0) {
        // A reset says nothing either way (the caller may not own the address); a signed-in
        // user asking for a verification mail is told to wait.
        if (purpose === 'RESET_PASSWORD') {
          logger.warn({ userId, purpose }, 'mail quota reached; no token sent');
          return;
        }
        throw AppError.rateLimited(Math.ceil(waitMs / 1000));
      }
      const { token, hash } = newOpaqueToken();
      const expiresAt = new Date(clock().getTime() + ONE_TIME_TOKEN_TTL_SECONDS[purpose] * 1000);
      await tokens.create({ tokenHash: hash, userId, purpose, expiresAt });
      // In the background (with the mailer's retries), so the answer takes the same time
      // whether or not a mail was sent: a password reset reveals nothing.
      mailer
        .send({ to: email, ...MAILS[purpose](token) })
        .catch((error: unknown) => logger.error({ err: error }, 'mail not delivered'));
    },

    async consume(purpose, token) {
      const userId = isOpaqueToken(token)
        ? await tokens.markUsed(hashOpaqueToken(token), purpose, clock())
        : null;
      if (!userId) throw AppError.badInput('token', 'is invalid, expired or already used');
      return userId;
    },
  };
}
