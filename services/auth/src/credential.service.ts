import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import { isUuid, normalizeEmail, validatePassword } from '@platform/validation';
import type { AuthTx, AuthTransactions } from './auth.transactions';
import type { CredentialRepository } from './credential.repository';
import type { OneTimeTokenService } from './one-time-token.service';
import type { IssuedChallenge, MfaService } from './mfa.service';
import type { GuessingClient, PasswordGuard } from './password-guard';
import type { PasswordHasher } from './password.hasher';
import type { SessionFilter } from './session.repository';
import type { RevocationReason, SessionService, SessionTokens } from './session.service';

const INVALID_LOGIN = 'Invalid email or password';

export interface LoginAttempt {
  /** Undefined (or not an id) for an unknown or disabled account: it fails like a wrong password. */
  userId: string | undefined;
  /** The normalised email that was typed: names the account for the guess limits when userId does not. */
  email: string;
  password: string;
  userAgent: string | undefined;
  client: GuessingClient;
  /**
   * A TOTP or recovery code sent with the password: for an account with TOTP on, the sign-in
   * completes in this one request (no challenge round trip). Ignored for an account without.
   */
  mfaCode?: string | undefined;
}

export type SignIn =
  | {
      tokens: SessionTokens;
      /** For the client to keep and present at its next login (see PasswordGuard). */
      deviceToken: string;
      mfaChallenge?: undefined;
    }
  | {
      /** The password was right; a second factor is still due (no session, no device token). */
      mfaChallenge: IssuedChallenge;
      tokens?: undefined;
    };

export interface PasswordChange {
  currentPassword: string;
  newPassword: string;
  /** The caller's session, which stays signed in. */
  keepSessionId: string | undefined;
  client: GuessingClient;
}

/** Who removes a credential, and with what proof when it is their own. */
export interface CredentialRemoval {
  /** The end user on whose behalf the caller acts, if any. */
  actorId: string | undefined;
  /** Required when the actor removes their own credential. */
  currentPassword: string | undefined;
  /** The actor's session, when they remove their own (see MfaService.requireRecentIfEnrolled). */
  sessionId?: string | undefined;
  client: GuessingClient;
}

/** Passwords: the first one, sign-in, change, reset, removal. */
export interface CredentialService {
  /** Stores the user's first password and opens their first session. */
  create(userId: string, password: string, userAgent: string | undefined): Promise<SessionTokens>;
  /**
   * Removes the password and ends every session. Users removing their own must prove they know
   * the password (BAD_USER_INPUT on currentPassword, RATE_LIMITED like login).
   */
  delete(userId: string, removal: CredentialRemoval): Promise<void>;
  /**
   * Opens a session; an unknown user fails like a wrong password, in about the same time.
   * Guesses are limited (RATE_LIMITED) before any password is checked.
   */
  login(attempt: LoginAttempt): Promise<SignIn>;
  /** Checks the current password (limited like login), sets the new one and ends every other session. */
  changePassword(userId: string, change: PasswordChange): Promise<void>;
  /** Sets a new password with a mailed reset token and ends every session; whose it was. */
  resetPassword(token: string, newPassword: string): Promise<string>;
  /**
   * The account was disabled: every session ends and every reset and email verification token
   * mailed before is used up, together, under the lock the user's password changes take. A
   * reset in flight either committed before, or is refused (its token used up); none sets a
   * password after. How many sessions ended. With `before`, only what was begun before that
   * instant ends (the account may have been enabled again since, and signed in anew).
   */
  lockOut(userId: string, before?: Date): Promise<number>;
}

export interface CredentialServiceDeps {
  credentials: CredentialRepository;
  passwords: PasswordHasher;
  sessions: SessionService;
  oneTimeTokens: Pick<OneTimeTokenService, 'consume' | 'holderOf' | 'revokeAll'>;
  transactions: AuthTransactions;
  guard: PasswordGuard;
  /** When set, a user with a second factor gets a challenge from login instead of a session. */
  mfa?: Pick<MfaService, 'challengeFor' | 'signInWithCode' | 'requireRecentIfEnrolled'>;
}

/** The name the guess limits know an account by: its id, or for an unknown one the typed email. */
const accountOf = (userId: string | undefined, email = '') =>
  userId ? `user:${userId}` : `email:${normalizeEmail(email)}`;

/** An empty current password is a missing one, not a guess. */
function requireCurrentPassword(password: string | undefined, why: string): string {
  if (!password) throw AppError.badInput('currentPassword', why);
  return password;
}

export function createCredentialService(deps: CredentialServiceDeps): CredentialService {
  const { credentials, passwords, sessions, oneTimeTokens, transactions, guard } = deps;

  /** Throws unless `password` is the user's, counting a wrong one against the guess limits. */
  const notCurrent = () => AppError.badInput('currentPassword', 'is not your current password');

  /** Checks the user's current password (limited like login); the hash it was checked against. */
  async function requirePassword(
    userId: string,
    password: string,
    client: GuessingClient,
  ): Promise<string> {
    const credential = await credentials.find(userId);
    const right = await guard.check(accountOf(userId), client, () =>
      passwords.verify(credential?.passwordHash, password),
    );
    if (!right || !credential) throw notCurrent();
    return credential.passwordHash;
  }

  /**
   * Under the user's lock: the password checked before is still the current one. A reset or a
   * change that committed meanwhile made it an old password, and what it was to allow is refused.
   */
  async function requireStill(tx: AuthTx, userId: string, checked: string): Promise<void> {
    if ((await credentials.currentHash(tx, userId)) !== checked) throw notCurrent();
  }

  /** The new password, its event and the end of the sessions that knew the old one commit together. */
  function replacePassword(
    userId: string,
    store: (tx: AuthTx) => Promise<void>,
    ending: { which: SessionFilter; reason: RevocationReason },
    /**
     * What must still hold once the user's password changes are serialised: a reset's token,
     * a change's checked password.
     */
    admit?: (tx: AuthTx) => Promise<unknown>,
  ): Promise<string[]> {
    return transactions.run(async (tx) => {
      // One change of the user's password at a time: a reset whose token a change, a reset or
      // the removal that committed first has ended is refused here, not applied after it.
      await credentials.lockUser(tx.client, userId);
      await admit?.(tx.client);
      // Inside the transaction: if Redis cannot forget them, nothing changes (and the client is
      // told to retry), rather than a new password with the old one's devices still trusted.
      await guard.forgetDevices(accountOf(userId));
      await store(tx.client);
      // A new password, however set, ends the reset codes mailed before it.
      await oneTimeTokens.revokeAll(tx.client, 'RESET_PASSWORD', userId);
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
      // The first session opens under the user's lock, if the password is still the one just
      // stored: a deletion that committed in between leaves no session on the deleted account.
      return sessions.open(userId, userAgent, async (tx) => {
        await credentials.lockUser(tx, userId);
        if ((await credentials.currentHash(tx, userId)) !== passwordHash)
          throw AppError.notFound('User');
      });
    },

    async delete(userId, removal) {
      let checked: string | undefined;
      if (removal.actorId === userId) {
        const password = requireCurrentPassword(
          removal.currentPassword,
          'is required to delete your own account',
        );
        await deps.mfa?.requireRecentIfEnrolled(userId, removal.sessionId);
        checked = await requirePassword(userId, password, removal.client);
      }
      await transactions.run(async (tx) => {
        await credentials.lockUser(tx.client, userId);
        if (checked !== undefined) await requireStill(tx.client, userId, checked);
        await sessions.endWithin(tx, userId, {}, 'user_deleted');
        await credentials.delete(tx.client, userId);
        // A reset code mailed before must not give the removed account a password again.
        await oneTimeTokens.revokeAll(tx.client, 'RESET_PASSWORD', userId);
      });
    },

    async login({ userId, email, password, userAgent, client, mfaCode }) {
      const knownId = userId && isUuid(userId) ? userId : undefined;
      const account = accountOf(knownId, email);
      const credential = knownId ? await credentials.find(knownId) : null;
      // Always hash: an unknown user costs as much time as a wrong password.
      const valid = await guard.check(account, client, () =>
        passwords.verify(credential?.passwordHash, password),
      );
      if (!credential || !valid) throw AppError.unauthenticated(INVALID_LOGIN);
      // Whatever the sign-in goes on to (a session, a session with a code sent along, or a
      // challenge) commits under the lock a password change or reset takes, after this check:
      // a change that committed since the password was checked made it an old one (its
      // sessions and challenges were ended then; nothing of this sign-in may outlive it), and a
      // change that comes after ends this session or challenge with the others.
      const stillCurrent = async (tx: AuthTx) => {
        await credentials.lockUser(tx, credential.userId);
        if ((await credentials.currentHash(tx, credential.userId)) !== credential.passwordHash)
          throw AppError.unauthenticated(INVALID_LOGIN);
      };
      if (mfaCode !== undefined && deps.mfa) {
        const done = await deps.mfa.signInWithCode(
          credential.userId,
          mfaCode,
          userAgent,
          client,
          stillCurrent,
        );
        if (done) return done;
      }
      // The device token is earned by the whole sign-in: a password alone must not buy a device
      // its own guess bucket for the second factor.
      const mfaChallenge = await deps.mfa?.challengeFor(
        credential.userId,
        userAgent,
        client.deviceToken,
        stillCurrent,
      );
      if (mfaChallenge) return { mfaChallenge };
      const deviceToken = await guard.deviceTokenFor(account, client.deviceToken);
      const tokens = await sessions.open(credential.userId, userAgent, stillCurrent);
      return { tokens, deviceToken };
    },

    async changePassword(userId, change) {
      const newPassword = validatePassword(change.newPassword, 'newPassword');
      const currentPassword = requireCurrentPassword(change.currentPassword, 'is required');
      await deps.mfa?.requireRecentIfEnrolled(userId, change.keepSessionId);
      const checked = await requirePassword(userId, currentPassword, change.client);
      const passwordHash = await passwords.hash(newPassword);
      // Whoever else knew the old password is signed out; this session stays.
      await replacePassword(
        userId,
        (tx) => credentials.update(tx, userId, passwordHash),
        { which: { except: change.keepSessionId }, reason: 'password_changed' },
        (tx) => requireStill(tx, userId, checked),
      );
    },

    async lockOut(userId, before) {
      const ended = await transactions.run(async (tx) => {
        await credentials.lockUser(tx.client, userId);
        await oneTimeTokens.revokeAll(tx.client, 'RESET_PASSWORD', userId, before);
        // Nor does a verification link mailed before verify the address of a disabled account.
        await oneTimeTokens.revokeAll(tx.client, 'VERIFY_EMAIL', userId, before);
        return sessions.endWithin(tx, userId, { createdBefore: before }, 'user_disabled');
      });
      return ended.length;
    },

    async resetPassword(token, newPassword) {
      const password = validatePassword(newPassword, 'newPassword');
      // A token that cannot be used is refused before a hash is spent on it.
      const userId = await oneTimeTokens.holderOf('RESET_PASSWORD', token);
      const passwordHash = await passwords.hash(password);
      // The token is used up in the transaction that sets the password, under the user's lock.
      await replacePassword(
        userId,
        (tx) => credentials.upsert(tx, userId, passwordHash),
        { which: {}, reason: 'password_reset' },
        (tx) => oneTimeTokens.consume('RESET_PASSWORD', token, tx),
      );
      return userId;
    },
  };
}
