import { Prisma, type OneTimeTokenPurpose, type PrismaClient, type Session } from '@platform/db';
import { createEvent, SESSION_REVOCATION_REASONS } from '@platform/events';
import { enqueueEvent } from '@platform/outbox';
import { AppError } from '@platform/errors';
import type { UnaryHandlers } from '@platform/grpc';
import type { authV1 } from '@platform/proto';
import type { SessionRevocations, TokenSigner } from '@platform/tokens';
import { isUuid, requireId, validatePassword } from '@platform/validation';
import type { Logger } from '@platform/logger';
import type { Mail, Mailer } from '@platform/mail';
import type { OneTimeTokenRepository } from './one-time-token.repository';
import type { PasswordHasher } from './password.hasher';
import { AUTH_SCHEMA, type RevocationReason, type SessionRepository } from './session.repository';
import type { SigningKeyRepository } from './signing-key.repository';

const REFRESH_TOKEN = /^[\w-]{43}$/;
const ONE_TIME_TOKEN = /^[\w-]{43}$/;
const INVALID_LOGIN = 'Invalid email or password';

const requireUserId = (userId: string) => requireId('userId', userId, 'user');

export function createAuthHandlers(deps: {
  db: PrismaClient;
  signingKeys: SigningKeyRepository;
  sessions: SessionRepository;
  passwords: PasswordHasher;
  signer: TokenSigner;
  revocations: SessionRevocations;
  /** Publish outbox events now rather than at the next poll. */
  relayKick: () => void;
  oneTimeTokens: OneTimeTokenRepository;
  mailer: Mailer;
  logger: Logger;
}): UnaryHandlers<typeof authV1.AuthServiceService> {
  const { db, sessions, passwords, signer, revocations, relayKick, oneTimeTokens, mailer, logger } =
    deps;

  /**
   * Mails go out in the background (with the mailer's retries), so the answer takes the
   * same time whether or not a mail was sent: password reset reveals nothing.
   */
  /** The user a mailed single-use token belongs to; BAD_USER_INPUT if it cannot be used. */
  async function consumeMailedToken(token: string, purpose: OneTimeTokenPurpose): Promise<string> {
    const userId = ONE_TIME_TOKEN.test(token) ? await oneTimeTokens.consume(token, purpose) : null;
    if (!userId) throw AppError.badInput('token', 'is invalid, expired or already used');
    return userId;
  }

  function sendInBackground(mail: Mail): void {
    mailer.send(mail).catch((error: unknown) => logger.error({ err: error }, 'mail not delivered'));
  }

  function tokensFor(session: Session, refreshToken: string): authV1.SessionTokens {
    return {
      accessToken: signer.sign({ userId: session.userId, sessionId: session.id }),
      refreshToken,
      expiresIn: signer.ttlSeconds,
      userId: session.userId,
      sessionId: session.id,
    };
  }

  async function end(
    userId: string,
    filter: { only?: string; except?: string },
    reason: RevocationReason,
  ) {
    const ids = await sessions.revoke(userId, filter, reason);
    // Access tokens of these sessions stop working now; the entries outlive the tokens.
    await revocations.revoke(ids, signer.ttlSeconds + 60);
    return ids;
  }

  return {
    async getJwks() {
      return { keys: await deps.signingKeys.publishedKeys() };
    },

    async createCredential(request) {
      const userId = requireUserId(request.userId);
      const passwordHash = await passwords.hash(validatePassword(request.password));
      try {
        await db.credential.create({ data: { userId, passwordHash } });
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
          throw AppError.conflict('This user already has a password');
        }
        throw error;
      }
      const opened = await sessions.open(userId, request.userAgent || undefined);
      return { tokens: tokensFor(opened.session, opened.refreshToken) };
    },

    async deleteCredential(request) {
      const userId = requireUserId(request.userId);
      await end(userId, {}, 'user_deleted');
      await db.credential.deleteMany({ where: { userId } });
      return {};
    },

    async login(request) {
      const userId = request.userId && isUuid(request.userId) ? request.userId : undefined;
      const credential = userId ? await db.credential.findUnique({ where: { userId } }) : null;
      // Always hash: an unknown email costs as much time as a wrong password.
      const valid = await passwords.verify(credential?.passwordHash, request.password);
      if (!credential || !valid) throw AppError.unauthenticated(INVALID_LOGIN);
      const opened = await sessions.open(credential.userId, request.userAgent || undefined);
      return { tokens: tokensFor(opened.session, opened.refreshToken) };
    },

    async refreshSession(request) {
      const invalid = () => AppError.unauthenticated('Invalid or expired refresh token');
      if (!REFRESH_TOKEN.test(request.refreshToken)) throw invalid();
      const result = await sessions.rotate(request.refreshToken, request.userAgent || undefined);
      if (result.kind === 'reused') {
        await revocations.revoke([result.session.id], signer.ttlSeconds + 60);
        throw invalid();
      }
      if (result.kind === 'invalid') throw invalid();
      return { tokens: tokensFor(result.session, result.refreshToken) };
    },

    async listSessions(request) {
      const active = await sessions.listActive(requireUserId(request.userId));
      return {
        sessions: active.map((session) => ({
          id: session.id,
          createdAt: session.createdAt,
          lastUsedAt: session.lastUsedAt,
          userAgent: session.userAgent ?? '',
        })),
      };
    },

    async revokeSession(request) {
      const userId = requireUserId(request.userId);
      if (!isUuid(request.sessionId)) throw AppError.notFound('Session');
      const ended = await end(userId, { only: request.sessionId }, 'revoked');
      if (ended.length === 0) throw AppError.notFound('Session');
      return {};
    },

    async revokeAllSessions(request) {
      const userId = requireUserId(request.userId);
      const reason =
        SESSION_REVOCATION_REASONS.find((known) => known === request.reason) ?? 'logout_all';
      const ended = await end(
        userId,
        request.exceptSessionId ? { except: request.exceptSessionId } : {},
        reason,
      );
      return { revoked: ended.length };
    },

    async requestEmailVerification(request) {
      const userId = requireUserId(request.userId);
      const token = await oneTimeTokens.issue(userId, 'VERIFY_EMAIL');
      sendInBackground({
        to: request.email,
        subject: 'Verify your email address',
        text: `Use this code to verify your email address (valid for 24 hours):\n\n${token}\n`,
      });
      return {};
    },

    async verifyEmail(request) {
      const userId = await consumeMailedToken(request.token, 'VERIFY_EMAIL');
      return { userId };
    },

    async requestPasswordReset(request) {
      const userId = requireUserId(request.userId);
      const token = await oneTimeTokens.issue(userId, 'RESET_PASSWORD');
      sendInBackground({
        to: request.email,
        subject: 'Reset your password',
        text: `Use this code to choose a new password (valid for 30 minutes):\n\n${token}\n\nIf you did not ask for it, ignore this mail.\n`,
      });
      return {};
    },

    async resetPassword(request) {
      const newPassword = validatePassword(request.newPassword, 'newPassword');
      const userId = await consumeMailedToken(request.token, 'RESET_PASSWORD');
      const passwordHash = await passwords.hash(newPassword);
      await db.$transaction(async (tx) => {
        await tx.credential.upsert({
          where: { userId },
          create: { userId, passwordHash },
          update: { passwordHash },
        });
        await enqueueEvent(tx, AUTH_SCHEMA, createEvent('auth.password_changed', { userId }));
      });
      relayKick();
      await end(userId, {}, 'password_reset');
      return { userId };
    },

    async changePassword(request) {
      const userId = requireUserId(request.userId);
      const newPassword = validatePassword(request.newPassword, 'newPassword');
      const credential = await db.credential.findUnique({ where: { userId } });
      if (!(await passwords.verify(credential?.passwordHash, request.currentPassword))) {
        throw AppError.badInput('currentPassword', 'is not your current password');
      }
      const passwordHash = await passwords.hash(newPassword);
      await db.$transaction(async (tx) => {
        await tx.credential.update({ where: { userId }, data: { passwordHash } });
        await enqueueEvent(tx, AUTH_SCHEMA, createEvent('auth.password_changed', { userId }));
      });
      relayKick();
      // Whoever else knew the old password is signed out; this session stays.
      await end(userId, request.sessionId ? { except: request.sessionId } : {}, 'password_changed');
      return {};
    },
  };
}
