import type { Session } from '@platform/db';
import type { MfaRepository, MfaStatusRow, TotpFactorRow } from '../mfa.repository';

interface FakeChallenge {
  userId: string;
  userAgent: string | null;
  deviceToken: string | null;
  expiresAt: Date;
  usedAt: Date | null;
  failures: number;
}

export interface FakeMfaRepository extends MfaRepository {
  readonly factors: Map<string, TotpFactorRow>;
  /** By hash. */
  readonly recoveryCodes: Map<string, { userId: string; usedAt: Date | null }>;
  readonly challenges: Map<string, FakeChallenge>;
}

/**
 * In memory; reads the sessions of the fake session repository it is given, and asks
 * `passkeysOf` how many passkeys a user has (for the MFA state).
 */
export function createFakeMfaRepository(
  sessions: Map<string, Session>,
  passkeysOf: (userId: string) => Promise<number> = async () => 0,
): FakeMfaRepository {
  const hasPasskey = async (userId: string) => (await passkeysOf(userId)) > 0;
  const stateVersions = new Map<string, number>();
  const factors = new Map<string, TotpFactorRow>();
  const recoveryCodes = new Map<string, { userId: string; usedAt: Date | null }>();
  const challenges = new Map<string, FakeChallenge>();
  const openSession = (userId: string, sessionId: string) => {
    const session = sessions.get(sessionId);
    return session && session.userId === userId && !session.revokedAt ? session : undefined;
  };

  return {
    factors,
    recoveryCodes,
    challenges,
    async findFactor(userId) {
      const factor = factors.get(userId);
      return factor ? { ...factor } : null;
    },
    async savePending(userId, secretSealed) {
      if (factors.get(userId)?.confirmedAt) return false;
      factors.set(userId, { userId, secretSealed, confirmedAt: null, lastUsedStep: 0 });
      return true;
    },
    async confirm(_tx, userId, secretSealed, step, at) {
      const factor = factors.get(userId);
      if (!factor || factor.confirmedAt || factor.secretSealed !== secretSealed) return false;
      factors.set(userId, { ...factor, confirmedAt: at, lastUsedStep: step });
      return true;
    },
    async useStep(_tx, userId, step) {
      const factor = factors.get(userId);
      if (!factor?.confirmedAt || factor.lastUsedStep >= step) return false;
      factor.lastUsedStep = step;
      return true;
    },
    async removeFactor(_tx, userId) {
      for (const [hash, code] of recoveryCodes)
        if (code.userId === userId) recoveryCodes.delete(hash);
      return factors.delete(userId);
    },
    async replaceRecoveryCodes(_tx, userId, codeHashes) {
      if (!factors.get(userId)?.confirmedAt) return false;
      for (const [hash, code] of recoveryCodes)
        if (code.userId === userId) recoveryCodes.delete(hash);
      for (const hash of codeHashes) recoveryCodes.set(hash, { userId, usedAt: null });
      return true;
    },
    async useRecoveryCode(_tx, userId, codeHash, at) {
      const code = recoveryCodes.get(codeHash);
      if (!code || code.userId !== userId || code.usedAt) return false;
      code.usedAt = at;
      return true;
    },
    async statusOf(userIds) {
      const statuses: MfaStatusRow[] = [];
      for (const userId of userIds) {
        if (!factors.get(userId)?.confirmedAt) continue;
        const left = [...recoveryCodes.values()].filter(
          (code) => code.userId === userId && !code.usedAt,
        ).length;
        statuses.push({ userId, totpEnabled: true, recoveryCodesLeft: left });
      }
      return statuses;
    },
    async advanceState(_tx, userId) {
      const stateVersion = (stateVersions.get(userId) ?? 0) + 1;
      stateVersions.set(userId, stateVersion);
      const mfaEnrolled = !!factors.get(userId)?.confirmedAt || (await hasPasskey(userId));
      return { mfaEnrolled, stateVersion };
    },
    async countFactors(_tx, userId) {
      return (factors.get(userId)?.confirmedAt ? 1 : 0) + (await passkeysOf(userId));
    },
    async stateVersions(userIds) {
      return new Map(userIds.map((userId) => [userId, stateVersions.get(userId) ?? 0]));
    },
    async createChallenge(challenge) {
      challenges.set(challenge.tokenHash, {
        userId: challenge.userId,
        userAgent: challenge.userAgent ?? null,
        deviceToken: challenge.deviceToken ?? null,
        expiresAt: challenge.expiresAt,
        usedAt: null,
        failures: 0,
      });
    },
    async findChallenge(tokenHash, at) {
      const challenge = challenges.get(tokenHash);
      return challenge && !challenge.usedAt && challenge.expiresAt > at ? { ...challenge } : null;
    },
    async takeAttempt(tokenHash, maxAttempts, at) {
      const challenge = challenges.get(tokenHash);
      if (!challenge || challenge.usedAt || challenge.expiresAt <= at) return null;
      if (challenge.failures >= maxAttempts) return null;
      challenge.failures++;
      const factor = factors.get(challenge.userId);
      return { challenge: { ...challenge }, factor: factor ? { ...factor } : null };
    },
    async lockChallenge(_tx, tokenHash, at) {
      const challenge = challenges.get(tokenHash);
      return Boolean(challenge && !challenge.usedAt && challenge.expiresAt > at);
    },
    async consumeChallenge(_tx, tokenHash, at) {
      const challenge = challenges.get(tokenHash);
      if (!challenge || challenge.usedAt || challenge.expiresAt <= at) return false;
      challenge.usedAt = at;
      return true;
    },
    async countChallengeFailure(tokenHash, maxFailures, at) {
      const challenge = challenges.get(tokenHash);
      if (!challenge || challenge.usedAt) return;
      challenge.failures++;
      if (challenge.failures >= maxFailures) challenge.usedAt = at;
    },
    async sessionLiveLocked(_tx, userId, sessionId) {
      return openSession(userId, sessionId) !== undefined;
    },
    async sessionAuthTimes(userId, sessionId) {
      const session = openSession(userId, sessionId);
      return session
        ? { createdAt: session.createdAt, reauthenticatedAt: session.reauthenticatedAt }
        : null;
    },
    async stampReauthentication(userId, sessionId, at) {
      const session = openSession(userId, sessionId);
      if (session) session.reauthenticatedAt = at;
      return session !== undefined;
    },
  };
}
