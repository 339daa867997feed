import { randomUUID } from 'node:crypto';
import { generate } from 'otplib';
import { describe, expect, it } from 'vitest';
import { latch } from '@platform/testing';
import { deleteAsAdmin } from './testing/admin-deletion';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';
import { inLockOrder } from './testing/lock-holder';
import { lockUser } from './user-lock';

const PASSWORD = 'correct horse battery';
const HOME = { address: '198.51.100.1' };
const ATTACKER = { address: '203.0.113.9' };

describe('CredentialService against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();
  const services = () => wireOverWorld(world);
  const login = (userId: string, password = PASSWORD, client = HOME) =>
    services().credentials.login({
      userId,
      email: 'ada@example.com',
      password,
      userAgent: undefined,
      client,
    });

  /** A user with a password and `count` sessions. */
  async function userWithSessions(count: number) {
    const userId = randomUUID();
    const { credentials } = services();
    const sessionIds = [(await credentials.create(userId, PASSWORD, undefined)).sessionId];
    while (sessionIds.length < count) {
      sessionIds.push((await login(userId)).tokens!.sessionId);
    }
    return { userId, sessionIds };
  }

  const passwordHashOf = async (userId: string) =>
    (await world.db.credential.findUnique({ where: { userId } }))?.passwordHash;
  /** A user's events in the outbox, as [type, payload], in a stable order. */
  const eventsOf = async (userId: string) =>
    inOrder(
      (await world.outboxEvents())
        .filter((event) => (event.payload as { userId?: string }).userId === userId)
        .map((event) => [event.type, event.payload]),
    );
  const inOrder = (events: unknown[][]) =>
    events.toSorted((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  const activeSessionIds = async (userId: string) =>
    (await services().sessions.listActive(userId)).map((session) => session.id);
  /**
   * Holds the hashing of every password starting with "attacker" until `release()`;
   * `attackerHashing` settles once one has started (its request's checks already passed).
   */
  function holdAttackerHash(passwords: ReturnType<typeof services>['passwords']) {
    const hashing = latch();
    const released = latch();
    const hash = passwords.hash.bind(passwords);
    passwords.hash = async (password: string) => {
      if (password.startsWith('attacker')) {
        hashing.open();
        await released.opened;
      }
      return hash(password);
    };
    return { attackerHashing: hashing.opened, release: released.open };
  }
  /**
   * Holds the first password check made through `passwords` once it has checked, until
   * `release()`; `checked` settles then (a sign-in holding a password it verified).
   */
  function holdFirstCheck(passwords: ReturnType<typeof services>['passwords']) {
    const checked = latch();
    const released = latch();
    const verify = passwords.verify.bind(passwords);
    let held = false;
    passwords.verify = async (hash, password) => {
      const right = await verify(hash, password);
      if (!held) {
        held = true;
        checked.open();
        await released.opened;
      }
      return right;
    };
    return { checked: checked.opened, release: released.open };
  }

  it('changes a password, announces it and ends the other sessions in one transaction', async () => {
    const { userId, sessionIds } = await userWithSessions(3);
    const [kept, ...others] = sessionIds as [string, ...string[]];
    await services().credentials.changePassword(userId, {
      currentPassword: PASSWORD,
      newPassword: 'a new passphrase',
      keepSessionId: kept,
      client: HOME,
    });
    expect(await passwordHashOf(userId)).toBe('hashed:a new passphrase');
    expect(await activeSessionIds(userId)).toEqual([kept]);
    expect(await eventsOf(userId)).toEqual(
      inOrder([
        ['auth.password_changed', { userId }],
        ...others.map((sessionId) => [
          'auth.session_revoked',
          { userId, sessionId, reason: 'password_changed' },
        ]),
      ]),
    );
    expect([...(await world.revocations.revokedAmong(sessionIds))].toSorted()).toEqual(
      others.toSorted(),
    );
  });

  it('keeps the old password when the other sessions cannot be ended', async () => {
    const { userId, sessionIds } = await userWithSessions(2);
    const change = services().credentials.changePassword(userId, {
      currentPassword: PASSWORD,
      newPassword: 'a new passphrase',
      keepSessionId: 'not a session id',
      client: HOME,
    });
    await expect(change).rejects.toThrow();
    expect(await passwordHashOf(userId)).toBe(`hashed:${PASSWORD}`);
    expect((await activeSessionIds(userId)).toSorted()).toEqual(sessionIds.toSorted());
    expect(await eventsOf(userId)).toEqual([]);
  });

  it('resets a password once when one token is used twice at once, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const { userId } = await userWithSessions(1);
      const { oneTimeTokens, credentials, mailedToken } = services();
      await oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
      const token = mailedToken();
      const answers = await Promise.allSettled([
        credentials.resetPassword(token, 'first new passphrase'),
        credentials.resetPassword(token, 'second new passphrase'),
      ]);
      const winner = answers.findIndex((answer) => answer.status === 'fulfilled');
      expect(answers.filter((answer) => answer.status === 'fulfilled')).toHaveLength(1);
      const loser = answers[1 - winner] as PromiseRejectedResult;
      expect(loser.reason).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      expect(await passwordHashOf(userId)).toBe(
        `hashed:${['first', 'second'][winner]} new passphrase`,
      );
      const types = (await eventsOf(userId)).map(([type]) => type);
      expect(types).toEqual(['auth.password_changed', 'auth.session_revoked']);
    }
  });

  it('ends every reset code mailed before a new password, set by a reset or by a change', async () => {
    const { userId } = await userWithSessions(1);
    const { oneTimeTokens, credentials, mailedToken } = services();
    const mailReset = async () => {
      await oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
      return mailedToken();
    };
    const [first, second] = [await mailReset(), await mailReset()];
    await credentials.resetPassword(second, 'reset passphrase one');
    // Whoever else read the first mail cannot take the account back with it.
    await expect(credentials.resetPassword(first, 'attacker passphrase')).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'token',
    });
    expect(await passwordHashOf(userId)).toBe('hashed:reset passphrase one');

    const third = await mailReset();
    // The reset ended every session: the owner signs in again, and changes the password.
    const { sessionId } = (await login(userId, 'reset passphrase one')).tokens!;
    await credentials.changePassword(userId, {
      currentPassword: 'reset passphrase one',
      newPassword: 'changed passphrase',
      keepSessionId: sessionId,
      client: HOME,
    });
    await expect(credentials.resetPassword(third, 'attacker passphrase')).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'token',
    });
    expect(await passwordHashOf(userId)).toBe('hashed:changed passphrase');
    // A code mailed after the new password still works.
    await credentials.resetPassword(await mailReset(), 'reset passphrase two');
    expect(await passwordHashOf(userId)).toBe('hashed:reset passphrase two');
  });

  it('refuses an older reset code still hashing its password when the owner recovered the account meanwhile', async () => {
    for (const recover of ['reset', 'change'] as const) {
      const { userId } = await userWithSessions(1);
      const wired = services();
      const { oneTimeTokens, credentials, mailedToken, passwords } = wired;
      const mailReset = async () => {
        await oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
        return mailedToken();
      };
      const [stolen, own] = [await mailReset(), await mailReset()];
      // The attacker's reset is held while its password is hashed (its token already checked).
      const { attackerHashing, release } = holdAttackerHash(passwords);
      const attack = credentials.resetPassword(stolen, 'attacker passphrase');
      await attackerHashing;
      if (recover === 'reset') await credentials.resetPassword(own, 'owner passphrase');
      else
        await credentials.changePassword(userId, {
          currentPassword: PASSWORD,
          newPassword: 'owner passphrase',
          keepSessionId: (await login(userId)).tokens!.sessionId,
          client: HOME,
        });
      release();
      await expect(attack).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      expect(await passwordHashOf(userId)).toBe('hashed:owner passphrase');
    }
  });

  /**
   * A user with one session, a reset code mailed to them and a session of the owner's, and the
   * owner's recovery of the account: by that reset, or by a change from that session.
   */
  async function accountToRecover() {
    const { userId } = await userWithSessions(1);
    const wiring = services();
    await wiring.oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
    const own = wiring.mailedToken();
    const ownerSession = (await login(userId)).tokens!.sessionId;
    const recover = (by: 'reset' | 'change') =>
      by === 'reset'
        ? wiring.credentials.resetPassword(own, 'owner passphrase')
        : wiring.credentials.changePassword(userId, {
            currentPassword: PASSWORD,
            newPassword: 'owner passphrase',
            keepSessionId: ownerSession,
            client: HOME,
          });
    return { userId, ownerSession, ...wiring, recover };
  }

  /** Turns TOTP on for an account to recover, from its owner's session; the recovery codes. */
  async function turnTotpOn({
    userId,
    ownerSession,
    mfa,
  }: Awaited<ReturnType<typeof accountToRecover>>) {
    const { secret } = await mfa.beginTotp(userId, ownerSession, 'ada@example.com');
    return mfa.confirmTotp(userId, ownerSession, await generate({ secret }), HOME);
  }

  it('refuses a change checked against the old password when the owner set a new one while it was hashing', async () => {
    for (const recover of ['reset', 'change'] as const) {
      const { userId, credentials, passwords, recover: recoverBy } = await accountToRecover();
      const attackerSession = (await login(userId)).tokens!.sessionId;
      // The attacker's change is held while its new password is hashed (the old one checked).
      const { attackerHashing, release } = holdAttackerHash(passwords);
      const attack = credentials.changePassword(userId, {
        currentPassword: PASSWORD,
        newPassword: 'attacker passphrase',
        keepSessionId: attackerSession,
        client: HOME,
      });
      await attackerHashing;
      await recoverBy(recover);
      release();
      await expect(attack).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'currentPassword',
      });
      expect(await passwordHashOf(userId)).toBe('hashed:owner passphrase');
    }
  });

  /**
   * The attacker's sign-in with the old password (`attack`), held once that password was
   * checked, while the owner recovers the account (`recover`): it must be refused, and open no
   * session after the recovery ended the others.
   */
  async function signInDuringRecovery(
    account: Awaited<ReturnType<typeof accountToRecover>>,
    recover: 'reset' | 'change',
    attack: (
      signIn: Awaited<ReturnType<ReturnType<typeof services>['credentials']['login']>>,
    ) => Promise<unknown>,
    mfaCode?: string,
  ): Promise<void> {
    const { userId, credentials, passwords } = account;
    const { checked, release } = holdFirstCheck(passwords);
    const attempt = credentials
      .login({
        userId,
        email: 'ada@example.com',
        password: PASSWORD,
        userAgent: undefined,
        client: ATTACKER,
        ...(mfaCode === undefined ? {} : { mfaCode }),
      })
      .then((signIn) => attack(signIn));
    await checked;
    await account.recover(recover);
    const recovered = await activeSessionIds(userId);
    release();
    await expect(attempt).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await activeSessionIds(userId)).toEqual(recovered);
  }

  it('does not let a sign-in checked against the old password outlive a change or a reset of it', async () => {
    for (const recover of ['reset', 'change'] as const)
      await signInDuringRecovery(await accountToRecover(), recover, async (signIn) => signIn);
  });

  it('does not let a sign-in checked against the old password go on with a second factor after a change or a reset of it', async () => {
    for (const recover of ['reset', 'change'] as const)
      for (const answer of ['challenge', 'code with the password'] as const) {
        const account = await accountToRecover();
        const { userId, mfa } = account;
        // The attacker has the second factor too: one of the recovery codes.
        const [code] = (await turnTotpOn(account)) as [string];
        await signInDuringRecovery(
          account,
          recover,
          async (signIn) =>
            signIn.mfaChallenge
              ? mfa.verify(signIn.mfaChallenge.challenge, code, ATTACKER)
              : signIn,
          answer === 'challenge' ? undefined : code,
        );
        // Refused before its code was spent.
        expect(await mfa.status([userId])).toEqual([
          { userId, totpEnabled: true, recoveryCodesLeft: 10 },
        ]);
      }
  });

  it('refuses a reset still hashing its password when the account is disabled meanwhile, and ends its sessions', async () => {
    const { userId, sessionIds } = await userWithSessions(2);
    const { oneTimeTokens, credentials, mailedToken, passwords } = services();
    await oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
    const mailed = mailedToken();
    const { attackerHashing, release } = holdAttackerHash(passwords);
    const reset = credentials.resetPassword(mailed, 'attacker passphrase');
    await attackerHashing;
    expect(await credentials.lockOut(userId)).toBe(sessionIds.length);
    release();
    await expect(reset).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
    expect(await passwordHashOf(userId)).toBe(`hashed:${PASSWORD}`);
    expect(await activeSessionIds(userId)).toEqual([]);
  });

  it('uses up the email verification token mailed before the account was disabled, even once it is enabled again', async () => {
    const { userId } = await userWithSessions(1);
    const { oneTimeTokens, credentials, mailedToken } = services();
    await oneTimeTokens.send('VERIFY_EMAIL', userId, 'ada@example.com');
    const mailed = mailedToken();
    await credentials.lockOut(userId);
    await expect(oneTimeTokens.consume('VERIFY_EMAIL', mailed)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'token',
    });
    // A link mailed after the lock-out (the account enabled again) verifies.
    await oneTimeTokens.send('VERIFY_EMAIL', userId, 'ada@example.com');
    expect(await oneTimeTokens.consume('VERIFY_EMAIL', mailedToken())).toBe(userId);
  });

  it('locks out from a status event only what was begun before the change, so the account enabled again since keeps its new sessions and codes', async () => {
    const { userId, sessionIds } = await userWithSessions(2);
    const { oneTimeTokens, credentials, mailedToken } = services();
    await oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
    const before = mailedToken();
    await new Promise((resolve) => setTimeout(resolve, 5)); // the codes' stamps are milliseconds
    const disabledAt = new Date();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // The account was enabled again and signed in anew (a minute later) before the event arrived.
    const later = wireOverWorld(world, { clock: createTestClock(new Date(Date.now() + 60_000)) });
    const after = (
      await later.credentials.login({
        userId,
        email: 'ada@example.com',
        password: PASSWORD,
        userAgent: undefined,
        client: HOME,
      })
    ).tokens!.sessionId;
    await later.oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
    const afterCode = later.mailedToken();

    expect(await credentials.lockOut(userId, disabledAt)).toBe(sessionIds.length);
    expect(await activeSessionIds(userId)).toEqual([after]);
    expect([...(await world.revocations.revokedAmong([...sessionIds, after]))].toSorted()).toEqual(
      sessionIds.toSorted(),
    );
    await expect(oneTimeTokens.holderOf('RESET_PASSWORD', before)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    expect(await oneTimeTokens.holderOf('RESET_PASSWORD', afterCode)).toBe(userId);
    // The same event again (a redelivery) ends nothing more.
    expect(await credentials.lockOut(userId, disabledAt)).toBe(0);
    expect(await activeSessionIds(userId)).toEqual([after]);
  });

  it('ends the reset codes of a removed password', async () => {
    const { userId } = await userWithSessions(1);
    const { oneTimeTokens, credentials, mailedToken } = services();
    await oneTimeTokens.send('RESET_PASSWORD', userId, 'ada@example.com');
    const token = mailedToken();
    await deleteAsAdmin(credentials, userId, HOME);
    await expect(credentials.resetPassword(token, 'a new passphrase')).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'token',
    });
    expect(await passwordHashOf(userId)).toBeUndefined();
  });

  it('removes the password and ends every session together', async () => {
    const { userId, sessionIds } = await userWithSessions(2);
    await services().credentials.delete(userId, {
      actorId: userId,
      currentPassword: PASSWORD,
      client: HOME,
    });
    expect(await passwordHashOf(userId)).toBeUndefined();
    expect(await activeSessionIds(userId)).toEqual([]);
    expect((await world.revocations.revokedAmong(sessionIds)).size).toBe(2);
    expect((await appErrorOf(login(userId))).code).toBe('UNAUTHENTICATED');
  });

  it('checks at most 5 of 60 concurrent guesses at an account from one address, every time', async () => {
    for (let round = 0; round < 5; round++) {
      const { userId } = await userWithSessions(1);
      const { credentials, passwords } = services();
      const client = { address: `198.51.100.${round + 10}` };
      const before = passwords.verifications;
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          credentials
            .login({
              userId,
              email: 'ada@example.com',
              password: i === 40 ? PASSWORD : `wrong guess ${i}`,
              userAgent: undefined,
              client,
            })
            .then(
              () => 'signed in',
              (error: { code: string }) => error.code,
            ),
        ),
      );
      const checked = passwords.verifications - before;
      expect(outcomes.filter((outcome) => outcome !== 'RATE_LIMITED')).toHaveLength(checked);
      expect(
        outcomes.filter((outcome) => outcome === 'UNAUTHENTICATED').length,
      ).toBeLessThanOrEqual(5);
      // The right guess is checked only if it got one of the places, and then gives it back.
      expect(checked).toBeLessThanOrEqual(6);
    }
  });

  it('checks exactly 5 wrong current passwords of 30 sent at once to changePassword', async () => {
    const { userId, sessionIds } = await userWithSessions(1);
    const { credentials, passwords } = services();
    const before = passwords.verifications;
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        appErrorOf(
          credentials.changePassword(userId, {
            currentPassword: `guess ${i}`,
            newPassword: 'the thief wants this',
            keepSessionId: sessionIds[0],
            client: { address: '192.0.2.200' },
          }),
        ).then((error) => error.code),
      ),
    );
    expect(outcomes.filter((code) => code === 'BAD_USER_INPUT')).toHaveLength(5);
    expect(outcomes.filter((code) => code === 'RATE_LIMITED')).toHaveLength(25);
    expect(passwords.verifications - before).toBe(5);
    expect(await passwordHashOf(userId)).toBe(`hashed:${PASSWORD}`);
  });

  it('leaves no session on an account deleted while its first password was being set, either way round', async () => {
    const { credentials, sessions } = services();
    for (const createFirst of [true, false]) {
      const userId = randomUUID();
      const create = () => credentials.create(userId, PASSWORD, undefined);
      const deletion = () => deleteAsAdmin(credentials, userId, HOME);
      const take = (client: Parameters<typeof lockUser>[0]) => lockUser(client, userId);
      const [created, deleted] = createFirst
        ? await inLockOrder(world.transactions, world.db, take, create, deletion)
        : (await inLockOrder(world.transactions, world.db, take, deletion, create)).reverse();
      expect(deleted?.status).toBe('fulfilled');
      if (createFirst) expect(created?.status).toBe('fulfilled');
      else
        expect(created?.status === 'rejected' && created.reason).toMatchObject({
          code: 'NOT_FOUND',
        });
      expect(await sessions.listActive(userId)).toEqual([]);
      expect(await world.db.credential.count({ where: { userId } })).toBe(0);
    }
  });
});
