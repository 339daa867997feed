import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appErrorOf } from './testing/app-error';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';

const PASSWORD = 'correct horse battery';

describe('CredentialService against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();
  const services = () => wireOverWorld(world);

  /** A user with a password and `count` sessions. */
  async function userWithSessions(count: number) {
    const userId = randomUUID();
    const { credentials } = services();
    const sessionIds = [(await credentials.create(userId, PASSWORD, undefined)).sessionId];
    while (sessionIds.length < count) {
      sessionIds.push((await credentials.login(userId, PASSWORD, undefined)).sessionId);
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

  it('changes a password, announces it and ends the other sessions in one transaction', async () => {
    const { userId, sessionIds } = await userWithSessions(3);
    const [kept, ...others] = sessionIds as [string, ...string[]];
    await services().credentials.changePassword(userId, {
      currentPassword: PASSWORD,
      newPassword: 'a new passphrase',
      keepSessionId: kept,
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

  it('removes the password and ends every session together', async () => {
    const { userId, sessionIds } = await userWithSessions(2);
    await services().credentials.delete(userId);
    expect(await passwordHashOf(userId)).toBeUndefined();
    expect(await activeSessionIds(userId)).toEqual([]);
    expect((await world.revocations.revokedAmong(sessionIds)).size).toBe(2);
    expect((await appErrorOf(services().credentials.login(userId, PASSWORD, undefined))).code).toBe(
      'UNAUTHENTICATED',
    );
  });
});
