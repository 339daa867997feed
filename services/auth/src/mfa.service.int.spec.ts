import { randomUUID } from 'node:crypto';
import { generate } from 'otplib';
import { describe, expect, it } from 'vitest';
import { createMfaRepository } from './mfa.repository';
import { MAX_CHALLENGE_FAILURES } from './mfa.service';
import { deleteAsAdmin } from './testing/admin-deletion';
import { appErrorOf } from './testing/app-error';
import { holdLock, untilOneWaitsForALock, untilWaitingForLocks } from './testing/lock-holder';
import { createTestClock } from './testing/auth.fakes';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';

const PASSWORD = 'correct horse battery';
const HOME = { address: '198.51.100.1' };

describe('MfaService against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();
  const clock = createTestClock();
  const services = () => wireOverWorld(world, { clock, guessPolicy: { perClient: 50 } });
  const codeFor = (secret: string, steps = 0) =>
    generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) + steps * 30 });

  async function enrolledUser() {
    const { credentials, mfa } = services();
    const userId = randomUUID();
    const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
    const { secret } = await mfa.beginTotp(userId, sessionId, 'ada@example.com');
    const recoveryCodes = await mfa.confirmTotp(userId, sessionId, await codeFor(secret), HOME);
    clock.advance(30);
    return { userId, sessionId, secret, recoveryCodes };
  }

  async function challengeOf(userId: string) {
    const signIn = await services().credentials.login({
      userId,
      email: 'ada@example.com',
      password: PASSWORD,
      userAgent: 'Firefox',
      client: HOME,
    });
    if (!signIn.mfaChallenge) throw new Error('expected an MFA challenge');
    return signIn.mfaChallenge.challenge;
  }

  it('stores the secret sealed, the codes hashed, and the challenge by hash', async () => {
    const { userId, secret, recoveryCodes } = await enrolledUser();
    const factor = await world.db.totpFactor.findUnique({ where: { userId } });
    expect(factor?.confirmedAt).not.toBeNull();
    expect(factor?.secretSealed).not.toContain(secret);
    const stored = await world.db.recoveryCode.findMany({ where: { userId } });
    expect(stored).toHaveLength(10);
    const text = JSON.stringify(stored);
    for (const code of recoveryCodes) expect(text).not.toContain(code.replaceAll('-', ''));
    const challenge = await challengeOf(userId);
    expect(
      JSON.stringify(await world.db.mfaChallenge.findMany({ where: { userId } })),
    ).not.toContain(challenge);
  });

  it('accepts one code once when the same code arrives twice at once', async () => {
    const { userId, secret } = await enrolledUser();
    const { mfa } = services();
    const code = await codeFor(secret);
    const [a, b] = [await challengeOf(userId), await challengeOf(userId)];
    const outcomes = await Promise.allSettled([
      mfa.verify(a, code, HOME),
      mfa.verify(b, code, HOME),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  });

  it('opens one session per challenge when it is completed twice at once', async () => {
    const { userId, recoveryCodes } = await enrolledUser();
    const { mfa } = services();
    const challenge = await challengeOf(userId);
    const outcomes = await Promise.allSettled([
      mfa.verify(challenge, recoveryCodes[0]!, HOME),
      mfa.verify(challenge, recoveryCodes[1]!, HOME),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  });

  it('spends only the code that completes a challenge when several complete it at once, every time', async () => {
    for (let round = 0; round < 5; round++) {
      const { userId, recoveryCodes } = await enrolledUser();
      const { mfa } = services();
      const challenge = await challengeOf(userId);
      const outcomes = await Promise.allSettled(
        recoveryCodes.slice(0, 4).map((code) => mfa.verify(challenge, code, HOME)),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      // The losers were told the challenge is used ("sign in again"), not that the code is wrong.
      for (const outcome of outcomes)
        if (outcome.status === 'rejected')
          expect(outcome.reason).toMatchObject({
            code: 'UNAUTHENTICATED',
            message: 'The sign-in challenge is invalid or has expired; sign in again',
          });
      // The losers spent no code and sent no notice.
      expect(await mfa.status([userId])).toEqual([
        { userId, totpEnabled: true, recoveryCodesLeft: 9 },
      ]);
      const notices = (await world.outboxEvents('auth.mfa_changed')).filter(({ payload }) => {
        const notice = payload as { userId: string; change: string };
        return notice.userId === userId && notice.change === 'recovery_code_used';
      });
      expect(notices).toHaveLength(1);
    }
  });

  it('takes a recovery code once, and gives a challenge up after too many wrong codes', async () => {
    const { userId, recoveryCodes, secret } = await enrolledUser();
    const { mfa } = services();
    await mfa.verify(await challengeOf(userId), recoveryCodes[3]!, HOME);
    expect(
      (await appErrorOf(mfa.verify(await challengeOf(userId), recoveryCodes[3]!, HOME))).code,
    ).toBe('UNAUTHENTICATED');
    const challenge = await challengeOf(userId);
    for (let i = 0; i < MAX_CHALLENGE_FAILURES; i++)
      await appErrorOf(mfa.verify(challenge, '000000', HOME));
    expect((await appErrorOf(mfa.verify(challenge, await codeFor(secret), HOME))).message).toMatch(
      /challenge/,
    );
  });

  it('keeps one set of 10 recovery codes when two regenerations race, and none after a racing disable', async () => {
    for (let round = 0; round < 5; round++) {
      const { userId, sessionId } = await enrolledUser();
      const { mfa } = services();
      const sets = await Promise.all([
        mfa.regenerateRecoveryCodes(userId, sessionId),
        mfa.regenerateRecoveryCodes(userId, sessionId),
      ]);
      expect(sets.map((codes) => codes.length)).toEqual([10, 10]);
      expect(await world.db.recoveryCode.count({ where: { userId } })).toBe(10);
      await Promise.allSettled([
        mfa.regenerateRecoveryCodes(userId, sessionId),
        mfa.disableTotp(userId, sessionId),
      ]);
      expect(await world.db.totpFactor.count({ where: { userId } })).toBe(0);
      expect(await world.db.recoveryCode.count({ where: { userId } })).toBe(0);
    }
  });

  it('stamps the session when the user re-authenticates, and disables TOTP after it', async () => {
    const { userId, sessionId, secret } = await enrolledUser();
    const { mfa } = services();
    clock.advance(600);
    expect((await appErrorOf(mfa.disableTotp(userId, sessionId))).reason).toBe(
      'REAUTHENTICATION_REQUIRED',
    );
    await mfa.reauthenticate(userId, sessionId, { code: await codeFor(secret) }, HOME);
    const session = await world.db.session.findUnique({ where: { id: sessionId } });
    expect(session?.reauthenticatedAt?.getTime()).toBe(clock.now().getTime());
    await mfa.disableTotp(userId, sessionId);
    expect(await world.db.totpFactor.count({ where: { userId } })).toBe(0);
    expect(await world.db.recoveryCode.count({ where: { userId } })).toBe(0);
    const events = await world.db.authOutboxEvent.findMany({ where: { type: 'auth.mfa_changed' } });
    expect(
      events.map((e) => (e.envelope as { payload: { userId: string; change: string } }).payload),
    ).toContainEqual({
      userId,
      change: 'totp_disabled',
      // The state it left, after the enrolment's (version 1).
      mfaEnrolled: false,
      stateVersion: 2,
    });
  });

  it('ends the sign-ins waiting for a second factor when the password changes or every other session is ended', async () => {
    const { credentials, mfa, sessions } = services();
    const { userId, sessionId, secret } = await enrolledUser();
    // An attacker with the (phished) password holds a challenge; the owner changes the password.
    const before = await challengeOf(userId);
    await credentials.changePassword(userId, {
      currentPassword: PASSWORD,
      newPassword: 'a brand new passphrase',
      keepSessionId: sessionId,
      client: HOME,
    });
    expect(await appErrorOf(mfa.verify(before, await codeFor(secret), HOME))).toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    // Or signs out everywhere else.
    const { userId: other, sessionId: otherSession, secret: otherSecret } = await enrolledUser();
    const pending = await challengeOf(other);
    await sessions.revokeAll(other, 'revoked', otherSession);
    expect(await appErrorOf(mfa.verify(pending, await codeFor(otherSecret), HOME))).toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  it('ends a session whose challenge was completed while the password changed or every other session ended', async () => {
    for (const ending of ['password change', 'sign out everywhere'] as const) {
      const { credentials, mfa, sessions } = services();
      const { userId, sessionId, recoveryCodes } = await enrolledUser();
      const challenge = await challengeOf(userId);
      // The completion has its challenge and waits to spend its code (a slow statement).
      const codes = await holdLock(
        world.transactions,
        (client) => client.$queryRaw`
          SELECT 1 FROM "auth"."recovery_codes" WHERE user_id = ${userId}::uuid FOR UPDATE`,
      );
      const completion = mfa.verify(challenge, recoveryCodes[0]!, HOME);
      await untilOneWaitsForALock(world.db);
      const ended =
        ending === 'password change'
          ? credentials.changePassword(userId, {
              currentPassword: PASSWORD,
              newPassword: 'a brand new passphrase',
              keepSessionId: sessionId,
              client: HOME,
            })
          : sessions.revokeAll(userId, 'revoked', sessionId);
      // The ending waits for the completion to commit or give its challenge up.
      await untilWaitingForLocks(world.db, 2);
      await codes.release();
      const [, completed] = await Promise.all([ended, completion]);
      // It committed first (it held the challenge); its session ended with the others.
      const active = (await sessions.listActive(userId)).map((session) => session.id);
      expect(active).not.toContain(completed.tokens.sessionId);
      expect(active).toEqual([sessionId]);
    }
  });

  it('forgets every way a deleted user signed in: password, TOTP, recovery codes, challenges', async () => {
    const { credentials } = services();
    const { userId } = await enrolledUser();
    await challengeOf(userId);
    await deleteAsAdmin(credentials, userId, HOME);
    for (const count of [
      world.db.credential.count({ where: { userId } }),
      world.db.totpFactor.count({ where: { userId } }),
      world.db.recoveryCode.count({ where: { userId } }),
      world.db.mfaChallenge.count({ where: { userId } }),
    ])
      expect(await count).toBe(0);
  });

  it('takes an attempt of an open challenge and reads its user factor in one statement; no used, expired or spent one', async () => {
    const { userId } = await enrolledUser();
    const repository = createMfaRepository(world.db);
    const at = clock.now();
    const open = { tokenHash: `open-${randomUUID()}`, expiresAt: new Date(at.getTime() + 60_000) };
    await repository.createChallenge({ ...open, userId, userAgent: 'Firefox', deviceToken: 'd' });
    const found = await repository.takeAttempt(open.tokenHash, 5, at);
    expect(found?.challenge).toEqual({
      userId,
      userAgent: 'Firefox',
      deviceToken: 'd',
      expiresAt: open.expiresAt,
      failures: 1,
    });
    expect(found?.factor).toEqual(await repository.findFactor(userId));
    expect(found?.factor?.confirmedAt).toBeInstanceOf(Date);

    // A user without a factor: the challenge, no factor.
    const plain = randomUUID();
    await repository.createChallenge({
      ...open,
      tokenHash: `plain-${plain}`,
      userId: plain,
      userAgent: undefined,
      deviceToken: undefined,
    });
    expect(await repository.takeAttempt(`plain-${plain}`, 5, at)).toEqual({
      challenge: {
        userId: plain,
        userAgent: null,
        deviceToken: null,
        expiresAt: open.expiresAt,
        failures: 1,
      },
      factor: null,
    });

    expect(await repository.takeAttempt(open.tokenHash, 5, open.expiresAt)).toBeNull();
    // Out of attempts: the first took one, four more, then none.
    for (let i = 0; i < 4; i++)
      expect(await repository.takeAttempt(open.tokenHash, 5, at)).not.toBeNull();
    expect(await repository.takeAttempt(open.tokenHash, 5, at)).toBeNull();
    expect(
      await world.transactions.run(({ client }) =>
        repository.consumeChallenge(client, open.tokenHash, at),
      ),
    ).toBe(true);
    expect(await repository.takeAttempt(open.tokenHash, 99, at)).toBeNull();
  });

  it('sweeps challenges expired over an hour ago as it creates one', async () => {
    const repository = createMfaRepository(world.db);
    const userId = randomUUID();
    const stale = `stale-${randomUUID()}`;
    await world.db.mfaChallenge.create({
      data: { tokenHash: stale, userId, expiresAt: new Date(Date.now() - 2 * 3600_000) },
    });
    const fresh = `fresh-${randomUUID()}`;
    await repository.createChallenge({
      tokenHash: fresh,
      userId,
      userAgent: undefined,
      deviceToken: undefined,
      expiresAt: new Date(Date.now() + 60_000),
    });
    // Sweeps take ten at a time: others' stale rows may go first, so sweep until it is gone.
    for (
      let i = 0;
      i < 20 && (await world.db.mfaChallenge.count({ where: { tokenHash: stale } }));
      i++
    )
      await repository.createChallenge({
        tokenHash: `more-${randomUUID()}`,
        userId,
        userAgent: undefined,
        deviceToken: undefined,
        expiresAt: new Date(Date.now() + 60_000),
      });
    expect(await world.db.mfaChallenge.count({ where: { tokenHash: stale } })).toBe(0);
    expect(await world.db.mfaChallenge.count({ where: { tokenHash: fresh } })).toBe(1);
  });

  it('reports who has a factor on', async () => {
    const { userId } = await enrolledUser();
    const other = randomUUID();
    expect(await services().mfa.status([userId, other])).toEqual([
      { userId, totpEnabled: true, recoveryCodesLeft: 10 },
    ]);
  });
});
