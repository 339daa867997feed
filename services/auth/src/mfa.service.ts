import { randomInt } from 'node:crypto';
import { AppError } from '@platform/errors';
import { createEvent, type EventPayload } from '@platform/events';
import { isUuid } from '@platform/validation';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import type { AuthTransaction, AuthTransactions, AuthTx } from './auth.transactions';
import type { CredentialRepository } from './credential.repository';
import type { ChallengeRow, MfaRepository, MfaStatusRow, TotpFactorRow } from './mfa.repository';
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from './opaque-token';
import type { GuessingClient, PasswordGuard } from './password-guard';
import type { PasswordHasher } from './password.hasher';
import type { SecretBox } from './secret-box';
import type { Admit, SessionService, SessionTokens } from './session.service';

/** What can complete a challenge (a passkey through its own ceremony, which calls `complete`). */
export type MfaMethod = 'TOTP' | 'RECOVERY_CODE' | 'PASSKEY';

export interface IssuedChallenge {
  /** Opaque, single-use (only its SHA-256 is stored). */
  challenge: string;
  expiresAt: Date;
  methods: MfaMethod[];
}

export interface MfaSignIn {
  tokens: SessionTokens;
  deviceToken: string;
}

export interface MfaPolicy {
  /** The issuer authenticator apps show. */
  issuer: string;
  challengeTtlSeconds: number;
  /** Managing factors needs a sign-in or re-authentication this recent. */
  reauthWindowSeconds: number;
}

/** Second factors: TOTP, recovery codes, the sign-in challenge and re-authentication. */
export interface MfaService {
  /**
   * After a right password (or a provider's word): a challenge when the user has a second
   * factor on, else null. With `admit`, the challenge is created in a transaction that runs it
   * first (the password checked is still the current one), and not at all if it throws.
   */
  challengeFor(
    userId: string,
    userAgent: string | undefined,
    deviceToken: string | undefined,
    admit?: Admit,
  ): Promise<IssuedChallenge | null>;
  /**
   * Completes a challenge with a TOTP or recovery code and opens the session. A wrong,
   * replayed or used code is UNAUTHENTICATED and counts against the sign-in guess limits
   * (RATE_LIMITED); an unknown, expired or used challenge is UNAUTHENTICATED. Of completions
   * of one challenge at once, one opens a session; the others spend no code.
   */
  verify(challenge: string, code: string, client: GuessingClient): Promise<MfaSignIn>;
  /**
   * After a right password sent with a code: for a user with TOTP on, checks the TOTP or
   * recovery code (as `verify` does: once per code, under the guess limits; wrong is
   * UNAUTHENTICATED "Invalid code") and opens the session, in the same request, in one
   * transaction that runs `admit` first (the password checked is still the current one: if it
   * throws, no code is spent). Null for a user without TOTP (then the sign-in goes on as
   * without a code: a passkey challenge, or none).
   */
  signInWithCode(
    userId: string,
    code: string,
    userAgent: string | undefined,
    client: GuessingClient,
    admit: Admit,
  ): Promise<MfaSignIn | null>;
  /** Proves the session's user again (password, or a code); until when that counts as recent. */
  reauthenticate(
    userId: string,
    sessionId: string,
    proof: { password?: string | undefined; code?: string | undefined },
    client: GuessingClient,
  ): Promise<Date>;
  beginTotp(
    userId: string,
    sessionId: string,
    accountName: string,
  ): Promise<{ secret: string; uri: string }>;
  /** Turns the pending factor on; the 10 recovery codes, shown once. */
  confirmTotp(
    userId: string,
    sessionId: string,
    code: string,
    client: GuessingClient,
  ): Promise<string[]>;
  disableTotp(userId: string, sessionId: string): Promise<void>;
  regenerateRecoveryCodes(userId: string, sessionId: string): Promise<string[]>;
  status(userIds: readonly string[]): Promise<MfaStatusRow[]>;
  /** Each user's MFA state version (0: their factors never changed), as auth.mfa_changed carries. */
  stateVersions(userIds: readonly string[]): Promise<Map<string, number>>;
  /**
   * Writes `auth.mfa_changed` in a transaction that changed the user's factors (or used a
   * recovery code), with the state it leaves (`mfaEnrolled`) and its version (`stateVersion`).
   */
  emitChange(tx: AuthTransaction, userId: string, change: MfaChange): Promise<void>;
  /**
   * After a factor was added in `tx`: if it is the user's first, ends their other sessions
   * (all but `keepSessionId`). A session opened with the password alone before the account had
   * a second factor (a phished password, say) must not go on as the account of someone who
   * now signs in with two, nor keep permissions a role grants only with MFA.
   */
  factorAdded(tx: AuthTransaction, userId: string, keepSessionId: string): Promise<void>;
  /**
   * After a way in (a passkey, a linked provider) was removed in `tx`: ends the user's other
   * sessions (all but `keepSessionId`). A user removes one they no longer trust (a lost key, a
   * provider account someone else used): a session opened through it must not outlive it, and
   * which one it opened is not recorded, so every other one ends, as on a password change.
   */
  wayInRemoved(tx: AuthTransaction, userId: string, keepSessionId: string): Promise<void>;
  /**
   * Refuses (FORBIDDEN, reason REAUTHENTICATION_REQUIRED) unless the session signed in or
   * re-authenticated within the window: the rule for managing any factor, passkeys included.
   */
  requireRecent(userId: string, sessionId: string): Promise<void>;
  /**
   * `requireRecent`, for an account with a second factor (TOTP or a passkey) only: changing
   * its password or deleting it then needs a session that signed in or re-authenticated
   * recently (with a factor, since the password alone no longer re-authenticates it), not an
   * old session plus the password. An account without one is protected by its password alone.
   */
  requireRecentIfEnrolled(userId: string, sessionId: string | undefined): Promise<void>;
  /**
   * Takes the user's lock (user-lock.ts) and refuses (UNAUTHENTICATED) unless the session is
   * still live: the first step of a transaction that adds a way in (a passkey, a linked account)
   * after `requireRecent` passed, so that a deletion or a sign-out everywhere that committed in
   * between is not outlived by what it added.
   */
  requireLiveWithin(tx: AuthTx, userId: string, sessionId: string): Promise<void>;
  /** Stamps the session as re-authenticated now (after a proof checked elsewhere); until when. */
  stampRecent(userId: string, sessionId: string): Promise<Date>;
  /** The open challenge `challenge` names (by its hash), or null if unknown, expired or used. */
  findChallenge(challenge: string): Promise<(ChallengeRow & { tokenHash: string }) | null>;
  /** The open challenge of this hash, or null (a ceremony that began with it looks again). */
  findChallengeByHash(tokenHash: string): Promise<ChallengeRow | null>;
  /** Counts a wrong answer to the challenge (used up after MAX_CHALLENGE_FAILURES). */
  countChallengeFailure(tokenHash: string): Promise<void>;
  /**
   * Uses the challenge up and opens the session, in one transaction that runs `admit` first (the
   * passkey answering is still registered): the end of every way of answering it
   * (UNAUTHENTICATED if it is no longer open).
   */
  complete(tokenHash: string, open: ChallengeRow, admit?: Admit): Promise<MfaSignIn>;
}

export interface MfaServiceDeps {
  repository: MfaRepository;
  box: SecretBox;
  guard: PasswordGuard;
  sessions: Pick<SessionService, 'openWithin' | 'endWithin'>;
  transactions: AuthTransactions;
  credentials: Pick<CredentialRepository, 'find'>;
  passwords: PasswordHasher;
  policy: MfaPolicy;
  /** Whether the user has a passkey (then it can answer a challenge too). */
  hasPasskey?: (userId: string) => Promise<boolean>;
  clock?: () => Date;
}

export const RECOVERY_CODE_COUNT = 10;
/** Wrong codes one challenge takes before it is used up (the guess limits apply besides). */
export const MAX_CHALLENGE_FAILURES = 5;
/** 30-second steps, 6 digits, SHA-1: what every authenticator app reads from the URI. */
const PERIOD = 30;
const TOTP_CODE = /^\d{6}$/;
/** 16 characters of 31 (about 79 bits), no look-alikes (0, 1, i, l, o); shown in groups of four. */
const RECOVERY_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
const RECOVERY_CODE = /^[2-9a-hjkmnp-z]{16}$/;

type MfaChange = EventPayload<'auth.mfa_changed'>['change'];

/** The guess guard's name for a user's account (shared by every way of proving oneself). */
export const accountOf = (userId: string) => `user:${userId}`;
const invalidChallenge = () =>
  AppError.unauthenticated('The sign-in challenge is invalid or has expired; sign in again');

function newRecoveryCode(): string {
  let code = '';
  while (code.length < 16) code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  return code.match(/.{4}/g)!.join('-');
}

/** Dashes, spaces and case do not matter. */
const normalizeRecoveryCode = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');
const hashRecoveryCode = (code: string) => hashOpaqueToken(`recovery-code\0${code}`);

export function createMfaService(deps: MfaServiceDeps): MfaService {
  const { repository, box, guard, sessions, transactions, policy } = deps;
  const clock = deps.clock ?? (() => new Date());

  /** The time step a code is right for (±1 step) and not used before; null otherwise. */
  async function totpStep(
    secretSealed: string,
    userId: string,
    code: string,
    afterStep: number,
  ): Promise<number | null> {
    if (!TOTP_CODE.test(code)) return null;
    const epoch = Math.floor(clock().getTime() / 1000);
    // A step after the window's last was used (accepted by an instance whose clock is ahead of
    // this one's): no code can be right now, and otplib would throw rather than say so.
    if (afterStep >= Math.floor(epoch / PERIOD) + 1) return null;
    const result = await verifyTotp({
      strategy: 'totp',
      secret: box.open(secretSealed, userId),
      token: code,
      period: PERIOD,
      epoch,
      epochTolerance: PERIOD,
      ...(afterStep > 0 ? { afterTimeStep: afterStep } : {}),
    });
    return result.valid && 'timeStep' in result ? result.timeStep : null;
  }

  /**
   * Whether `code` is a right TOTP code or unused recovery code of the user; uses it up in `tx`
   * (a recovery code with its notice), so it stays unspent unless `tx` commits. The factor as
   * read with the challenge may be given: its step only narrows the search, the conditional
   * write decides.
   */
  async function spendCode(
    tx: AuthTransaction,
    userId: string,
    code: string,
    known?: TotpFactorRow | null,
  ): Promise<boolean> {
    const factor = known === undefined ? await repository.findFactor(userId) : known;
    if (!factor?.confirmedAt) return false;
    const trimmed = code.trim();
    if (TOTP_CODE.test(trimmed)) {
      const step = await totpStep(factor.secretSealed, userId, trimmed, factor.lastUsedStep);
      // The conditional write is what refuses a replay when two arrive at once.
      return step !== null && (await repository.useStep(tx.client, userId, step));
    }
    const recovery = normalizeRecoveryCode(trimmed);
    if (!RECOVERY_CODE.test(recovery)) return false;
    if (!(await repository.useRecoveryCode(tx.client, userId, hashRecoveryCode(recovery), clock())))
      return false;
    await emitChange(tx, userId, 'recovery_code_used');
    return true;
  }

  /**
   * A code checked under the guess limits: `signIn` answers the sign-in, or null for a wrong
   * code (counted, and UNAUTHENTICATED "Invalid code"). What it throws counts no guess.
   */
  async function withCode(
    userId: string,
    client: GuessingClient,
    signIn: () => Promise<MfaSignIn | null>,
  ): Promise<MfaSignIn> {
    const outcome: { signIn: MfaSignIn | null } = { signIn: null };
    const right = await guard.check(accountOf(userId), client, async () => {
      outcome.signIn = await signIn();
      return outcome.signIn !== null;
    });
    if (!right || !outcome.signIn) throw AppError.unauthenticated('Invalid code');
    return outcome.signIn;
  }

  /**
   * A sign-in whose session committed, with its device token: earned by the whole sign-in, and
   * asked of Redis after the commit, so the transaction (and its connection) is not held over
   * those round trips.
   */
  async function signedIn(
    tokens: SessionTokens | null,
    userId: string,
    deviceToken: string | undefined,
  ): Promise<MfaSignIn | null> {
    if (!tokens) return null;
    return { tokens, deviceToken: await guard.deviceTokenFor(accountOf(userId), deviceToken) };
  }

  async function stampRecent(userId: string, sessionId: string): Promise<Date> {
    const at = clock();
    if (!isUuid(sessionId) || !(await repository.stampReauthentication(userId, sessionId, at)))
      throw AppError.unauthenticated('Session has ended');
    return new Date(at.getTime() + policy.reauthWindowSeconds * 1000);
  }

  /** Refuses unless the session signed in or re-authenticated within the window. */
  async function requireLiveWithin(tx: AuthTx, userId: string, sessionId: string) {
    if (!isUuid(sessionId) || !(await repository.sessionLiveLocked(tx, userId, sessionId)))
      throw AppError.unauthenticated('Session has ended');
  }

  async function requireRecent(userId: string, sessionId: string): Promise<void> {
    const times = isUuid(sessionId) ? await repository.sessionAuthTimes(userId, sessionId) : null;
    if (!times) throw AppError.unauthenticated('Session has ended');
    const last = Math.max(times.createdAt.getTime(), times.reauthenticatedAt?.getTime() ?? 0);
    if (clock().getTime() - last > policy.reauthWindowSeconds * 1000)
      throw new AppError(
        'FORBIDDEN',
        `Sign in again or reauthenticate first (needed within ${spanOf(policy.reauthWindowSeconds)})`,
        { reason: 'REAUTHENTICATION_REQUIRED' },
      );
  }

  async function emitChange(tx: AuthTransaction, userId: string, change: MfaChange) {
    const state = await repository.advanceState(tx.client, userId);
    await tx.emit(createEvent('auth.mfa_changed', { userId, change, ...state }));
  }

  async function factorAdded(tx: AuthTransaction, userId: string, keepSessionId: string) {
    if ((await repository.countFactors(tx.client, userId)) !== 1) return;
    // Device tokens earned with the password alone get no bucket of their own any more. Before
    // the sessions end: their end reaches Redis at once, and should this fail after it, the
    // rolled-back change would leave them ended there (the revocation sweep finishes those).
    await guard.forgetDevices(accountOf(userId));
    await sessions.endWithin(tx, userId, { except: keepSessionId }, 'logout_all');
  }

  async function requireRecentIfEnrolled(userId: string, sessionId: string | undefined) {
    const factors = await transactions.run((tx) => repository.countFactors(tx.client, userId));
    if (factors > 0) await requireRecent(userId, sessionId ?? '');
  }

  async function wayInRemoved(tx: AuthTransaction, userId: string, keepSessionId: string) {
    await sessions.endWithin(tx, userId, { except: keepSessionId }, 'logout_all');
  }

  async function newRecoveryCodes(
    userId: string,
    change: MfaChange | null,
    confirming?: { secretSealed: string; step: number; sessionId: string },
  ) {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    const hashes = codes.map((code) => hashRecoveryCode(normalizeRecoveryCode(code)));
    await transactions.run(async (tx) => {
      if (
        confirming &&
        !(await repository.confirm(
          tx.client,
          userId,
          confirming.secretSealed,
          confirming.step,
          clock(),
        ))
      )
        throw AppError.badInput('code', 'no TOTP enrolment is pending; begin again');
      if (confirming) await factorAdded(tx, userId, confirming.sessionId);
      if (!(await repository.replaceRecoveryCodes(tx.client, userId, hashes)))
        throw AppError.notFound('TOTP factor');
      if (change) await emitChange(tx, userId, change);
    });
    return codes;
  }

  /**
   * The end of every way of answering a challenge (a code, or a passkey assertion checked
   * before), in one transaction: the challenge locked first, then `answer` (a code spent in the
   * transaction; false if wrong: null, nothing spent), then the challenge used up and the
   * session opened. Of completions at once, one opens a session; the others wait for it, find
   * the challenge used (UNAUTHENTICATED) and spend nothing. A password change or "sign out
   * everywhere" ends the challenge first, so either this finds it used or that ends the session.
   */
  async function completeChallenge(
    tokenHash: string,
    open: ChallengeRow,
    answer: (tx: AuthTransaction) => Promise<boolean>,
    admit?: Admit,
  ): Promise<MfaSignIn | null> {
    const tokens = await transactions.runFor(open.userId, async (tx) => {
      // Before the challenge's row lock: a change of the user's ways in takes the user's lock
      // first and the challenge rows after, and so must everything else that takes both.
      await admit?.(tx.client);
      const at = clock();
      if (!(await repository.lockChallenge(tx.client, tokenHash, at))) throw invalidChallenge();
      if (!(await answer(tx))) return null;
      // Open, and locked since: this uses it up.
      await repository.consumeChallenge(tx.client, tokenHash, at);
      return sessions.openWithin(tx, open.userId, open.userAgent ?? undefined);
    });
    return signedIn(tokens, open.userId, open.deviceToken ?? undefined);
  }

  return {
    async challengeFor(userId, userAgent, deviceToken, admit) {
      // Either factor makes the password alone not enough: a passkey-only account is asked
      // for its passkey, as `mfaEnrolled` tells its owner and admins it would be.
      const [factor, passkey] = await Promise.all([
        repository.findFactor(userId),
        deps.hasPasskey?.(userId) ?? false,
      ]);
      const totp = Boolean(factor?.confirmedAt);
      if (!totp && !passkey) return null;
      const { token, hash } = newOpaqueToken();
      const expiresAt = new Date(clock().getTime() + policy.challengeTtlSeconds * 1000);
      const challenge = {
        tokenHash: hash,
        userId,
        userAgent: userAgent?.slice(0, 500),
        deviceToken,
        expiresAt,
      };
      if (!admit) await repository.createChallenge(challenge);
      else
        await transactions.runFor(userId, async ({ client }) => {
          await admit(client);
          await repository.createChallenge(challenge, client);
        });
      const methods: MfaMethod[] = totp ? ['TOTP', 'RECOVERY_CODE'] : [];
      if (passkey) methods.push('PASSKEY');
      return { challenge: token, expiresAt, methods };
    },

    async verify(challenge, code, client) {
      if (!isOpaqueToken(challenge)) throw invalidChallenge();
      const tokenHash = hashOpaqueToken(challenge);
      // Each code checked first takes one of the challenge's attempts, atomically (parallel
      // guesses get no more than MAX_CHALLENGE_FAILURES checks between them), and reads the
      // user's factor in the same statement (a sign-in with MFA is two requests already).
      const found = await repository.takeAttempt(tokenHash, MAX_CHALLENGE_FAILURES, clock());
      if (!found) throw invalidChallenge();
      const { challenge: open, factor } = found;
      // The device that typed the password is the one guessing: the same buckets as its login.
      const guessing = { address: client.address, deviceToken: open.deviceToken ?? undefined };
      return withCode(open.userId, guessing, () =>
        completeChallenge(tokenHash, open, (tx) => spendCode(tx, open.userId, code, factor)),
      );
    },

    async signInWithCode(userId, code, userAgent, client, admit) {
      const factor = await repository.findFactor(userId);
      if (!factor?.confirmedAt) return null;
      // The device that typed the password is the one guessing, as with a challenge.
      return withCode(userId, client, async () => {
        const tokens = await transactions.runFor(userId, async (tx) => {
          // The password first: a sign-in it no longer admits spends no code.
          await admit(tx.client);
          if (!(await spendCode(tx, userId, code, factor))) return null;
          return sessions.openWithin(tx, userId, userAgent);
        });
        return signedIn(tokens, userId, client.deviceToken);
      });
    },

    async reauthenticate(userId, sessionId, proof, client) {
      const password = proof.password || undefined;
      const code = proof.code || undefined;
      if (!password === !code) throw AppError.badInput('password', 'give a password or a code');
      let right: boolean;
      if (password) {
        // With a second factor on, the password alone does not manage factors: an old session
        // plus a phished password must not buy recovery codes or a passkey of the attacker's.
        const [factor, passkey] = await Promise.all([
          repository.findFactor(userId),
          deps.hasPasskey?.(userId) ?? false,
        ]);
        if (factor?.confirmedAt || passkey)
          throw AppError.badInput(
            'password',
            'two-step sign-in is on: reauthenticate with a code or a passkey',
          );
        const credential = await deps.credentials.find(userId);
        right = await guard.check(accountOf(userId), client, () =>
          deps.passwords.verify(credential?.passwordHash, password),
        );
        if (!right) throw AppError.badInput('password', 'is not your current password');
      } else {
        // The factor read first: the transaction holds one pooled connection, not two.
        const factor = await repository.findFactor(userId);
        right = await guard.check(accountOf(userId), client, () =>
          transactions.run((tx) => spendCode(tx, userId, code ?? '', factor)),
        );
        if (!right) throw AppError.badInput('code', 'is not a valid code');
      }
      return stampRecent(userId, sessionId);
    },

    async beginTotp(userId, sessionId, accountName) {
      await requireRecent(userId, sessionId);
      const secret = generateSecret();
      if (!(await repository.savePending(userId, box.seal(secret, userId))))
        throw AppError.conflict('Two-step sign-in with an authenticator app is already on');
      const uri = generateURI({
        issuer: policy.issuer,
        label: accountName || userId,
        secret,
        period: PERIOD,
      });
      return { secret, uri };
    },

    async confirmTotp(userId, sessionId, code, client) {
      await requireRecent(userId, sessionId);
      const factor = await repository.findFactor(userId);
      if (!factor || factor.confirmedAt)
        throw AppError.badInput('code', 'no TOTP enrolment is pending; begin again');
      let step: number | null = null;
      const right = await guard.check(accountOf(userId), client, async () => {
        step = await totpStep(factor.secretSealed, userId, code.trim(), 0);
        return step !== null;
      });
      if (!right || step === null) throw AppError.badInput('code', 'is not a valid code');
      // Bound to the secret the code was checked against: an enrolment begun again meanwhile
      // (another tab) is not the one turned on.
      return newRecoveryCodes(userId, 'totp_enabled', {
        secretSealed: factor.secretSealed,
        step,
        sessionId,
      });
    },

    async disableTotp(userId, sessionId) {
      await requireRecent(userId, sessionId);
      await transactions.run(async (tx) => {
        const factor = await repository.findFactor(userId);
        if (!(await repository.removeFactor(tx.client, userId)) || !factor?.confirmedAt)
          throw AppError.notFound('TOTP factor');
        await emitChange(tx, userId, 'totp_disabled');
      });
    },

    async regenerateRecoveryCodes(userId, sessionId) {
      await requireRecent(userId, sessionId);
      const factor = await repository.findFactor(userId);
      if (!factor?.confirmedAt) throw AppError.notFound('TOTP factor');
      return newRecoveryCodes(userId, 'recovery_codes_regenerated');
    },

    status(userIds) {
      return repository.statusOf(userIds.filter(isUuid));
    },

    stateVersions(userIds) {
      return repository.stateVersions(userIds.filter(isUuid));
    },

    emitChange,
    factorAdded,
    wayInRemoved,
    requireRecentIfEnrolled,

    requireRecent,
    requireLiveWithin,
    stampRecent,

    async findChallenge(challenge) {
      if (!isOpaqueToken(challenge)) return null;
      const tokenHash = hashOpaqueToken(challenge);
      const open = await repository.findChallenge(tokenHash, clock());
      return open ? { ...open, tokenHash } : null;
    },

    findChallengeByHash(tokenHash) {
      return repository.findChallenge(tokenHash, clock());
    },

    countChallengeFailure(tokenHash) {
      return repository.countChallengeFailure(tokenHash, MAX_CHALLENGE_FAILURES, clock());
    },

    async complete(tokenHash, open, admit) {
      // The passkey's assertion was checked before: nothing more to answer.
      const signIn = await completeChallenge(tokenHash, open, async () => true, admit);
      if (!signIn) throw invalidChallenge();
      return signIn;
    },
  };
}

/** "5 minutes", "1 minute", "90 seconds": a window as a person reads it. */
export function spanOf(seconds: number): string {
  const [count, unit] = seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second'];
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}
