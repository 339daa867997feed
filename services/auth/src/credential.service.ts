import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import { isUuid, validatePassword } from '@platform/validation';
import type { AuthTx, AuthTransactions } from './auth.transactions';
import type { CredentialRepository } from './credential.repository';
import type { OneTimeTokenService } from './one-time-token.service';
import type { PasswordHasher } from './password.hasher';
import type { SessionFilter } from './session.repository';
import type { RevocationReason, SessionService, SessionTokens } from './session.service';

const INVALID_LOGIN = 'Invalid email or password';

export interface PasswordChange {
  currentPassword: string;
  newPassword: string;
  /** The caller's session, which stays signed in. */
  keepSessionId: string | undefined;
}

/** Passwords: the first one, sign-in, change, reset, removal. */
export interface CredentialService {
  /** Stores the user's first password and opens their first session. */
  create(userId: string, password: string, userAgent: string | undefined): Promise<SessionTokens>;
  /** Removes the password and ends every session. */
  delete(userId: string): Promise<void>;
  /** Opens a session; an unknown user fails like a wrong password, in about the same time. */
  login(
    userId: string | undefined,
    password: string,
    userAgent: string | undefined,
  ): Promise<SessionTokens>;
  /** Checks the current password, sets the new one and ends every other session. */
  changePassword(userId: string, change: PasswordChange): Promise<void>;
  /** Sets a new password with a mailed reset token and ends every session; whose it was. */
  resetPassword(token: string, newPassword: string): Promise<string>;
}

export interface CredentialServiceDeps {
  credentials: CredentialRepository;
  passwords: PasswordHasher;
  sessions: SessionService;
  oneTimeTokens: Pick<OneTimeTokenService, 'consume'>;
  transactions: AuthTransactions;
}

export function createCredentialService(deps: CredentialServiceDeps): CredentialService {
  const { credentials, passwords, sessions, oneTimeTokens, transactions } = deps;

  /** The new password, its event and the end of the sessions that knew the old one commit together. */
  function replacePassword(
    userId: string,
    store: (tx: AuthTx) => Promise<void>,
    ending: { which: SessionFilter; reason: RevocationReason },
  ): Promise<string[]> {
    return transactions.run(async (tx) => {
      await store(tx.client);
      await tx.emit(createEvent('auth.password_changed', { userId }));
      return sessions.endWithin(tx, userId, ending.which, ending.reason);
    });
  }

  return {
    async create(userId, password, userAgent) {
      const passwordHash = await passwords.hash(validatePassword(password));
      if (!(await credentials.create(userId, passwordHash))) {
        throw AppError.conflict('This user already has a password');
      }
      return sessions.open(userId, userAgent);
    },

    async delete(userId) {
      await transactions.run(async (tx) => {
        await sessions.endWithin(tx, userId, {}, 'user_deleted');
        await credentials.delete(tx.client, userId);
      });
    },

    async login(userId, password, userAgent) {
      const credential = userId && isUuid(userId) ? await credentials.find(userId) : null;
      // Always hash: an unknown user costs as much time as a wrong password.
      const valid = await passwords.verify(credential?.passwordHash, password);
      if (!credential || !valid) throw AppError.unauthenticated(INVALID_LOGIN);
      return sessions.open(credential.userId, userAgent);
    },

    async changePassword(userId, change) {
      const newPassword = validatePassword(change.newPassword, 'newPassword');
      const credential = await credentials.find(userId);
      if (!(await passwords.verify(credential?.passwordHash, change.currentPassword))) {
        throw AppError.badInput('currentPassword', 'is not your current password');
      }
      const passwordHash = await passwords.hash(newPassword);
      // Whoever else knew the old password is signed out; this session stays.
      await replacePassword(userId, (tx) => credentials.update(tx, userId, passwordHash), {
        which: { except: change.keepSessionId },
        reason: 'password_changed',
      });
    },

    async resetPassword(token, newPassword) {
      const password = validatePassword(newPassword, 'newPassword');
      const userId = await oneTimeTokens.consume('RESET_PASSWORD', token);
      const passwordHash = await passwords.hash(password);
      await replacePassword(userId, (tx) => credentials.upsert(tx, userId, passwordHash), {
        which: {},
        reason: 'password_reset',
      });
      return userId;
    },
  };
}
