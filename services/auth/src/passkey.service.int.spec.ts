import { randomUUID } from 'node:crypto';
import { createSoftwareAuthenticator } from '@platform/webauthn-testing';
import { describe, expect, it } from 'vitest';
import { deleteAsAdmin } from './testing/admin-deletion';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { useAuthTestWorld } from './testing/auth.test-world';
import { TEST_RELYING_PARTY, wireOverWorld } from './testing/auth.wiring';
import { inLockOrder } from './testing/lock-holder';
import { lockUser } from './user-lock';

const PASSWORD = 'correct horse battery';
const HOME = { address: '198.51.100.1' };
const ORIGIN = TEST_RELYING_PARTY.origins[0] ?? '';

describe('PasskeyService against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();
  const clock = createTestClock();
  const services = () => wireOverWorld(world, { clock, guessPolicy: { perClient: 50 } });

  async function withPasskey() {
    const { credentials, passkeys } = services();
    const userId = randomUUID();
    const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
    const authenticator = createSoftwareAuthenticator(ORIGIN);
    const options = await passkeys.beginRegistration(userId, sessionId, 'ada@example.com');
    const passkey = await passkeys.finishRegistration(
      userId,
      sessionId,
      authenticator.create(options),
      'Laptop',
    );
    return { userId, sessionId, authenticator, passkey };
  }

  it('stores the credential in auth.passkeys and its ceremony challenge in Redis, once', async () => {
    const { passkeys } = services();
    const { userId, passkey, authenticator } = await withPasskey();
    const row = await world.db.passkey.findUniqueOrThrow({ where: { id: passkey.id } });
    expect(row).toMatchObject({
      userId,
      credentialId: authenticator.credentials[0]?.id,
      counter: 0n,
      transports: ['internal'],
      name: 'Laptop',
      aaguid: '00000000-0000-0000-0000-000000000000',
    });
    expect(row.publicKey.length).toBeGreaterThan(64);

    const options = JSON.parse(await passkeys.beginLogin()) as { challenge: string };
    const key = `auth:passkey-challenge:${options.challenge}`;
    const ttl = await world.redis.ttl(key);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    await passkeys.finishLogin(authenticator.get(JSON.stringify(options)), 'Firefox', HOME);
    expect(await world.redis.exists(key)).toBe(0);
  });

  it('lets one of two sign-ins with the same challenge through', async () => {
    const { passkeys } = services();
    const { authenticator } = await withPasskey();
    const options = await passkeys.beginLogin();
    const first = authenticator.get(options);
    const second = authenticator.get(options);
    const outcomes = await Promise.allSettled([
      passkeys.finishLogin(first, undefined, HOME),
      passkeys.finishLogin(second, undefined, HOME),
    ]);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
  });

  it('moves the stored counter forward and refuses one that goes back', async () => {
    const { passkeys } = services();
    const { passkey, authenticator } = await withPasskey();
    const clone = { ...authenticator.credentials[0]! };
    await passkeys.finishLogin(authenticator.get(await passkeys.beginLogin()), undefined, HOME);
    await passkeys.finishLogin(authenticator.get(await passkeys.beginLogin()), undefined, HOME);
    const row = await world.db.passkey.findUniqueOrThrow({ where: { id: passkey.id } });
    expect(row.counter).toBe(2n);
    expect(row.lastUsedAt).not.toBeNull();
    const cloned = authenticator.get(await passkeys.beginLogin(), { credential: clone });
    expect(await appErrorOf(passkeys.finishLogin(cloned, undefined, HOME))).toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  it('refuses a credential registered already, and removes one in a transaction with its event', async () => {
    const { passkeys } = services();
    const { userId, sessionId, authenticator, passkey } = await withPasskey();
    // The same authenticator answering a second ceremony with the credential it already has.
    const options = JSON.parse(
      await passkeys.beginRegistration(userId, sessionId, 'ada@example.com'),
    ) as { excludeCredentials: { id: string }[] };
    expect(options.excludeCredentials.map((c) => c.id)).toEqual([authenticator.credentials[0]?.id]);

    await passkeys.remove(userId, sessionId, passkey.id);
    expect(await world.db.passkey.count({ where: { userId } })).toBe(0);
    const events = await world.db.authOutboxEvent.findMany({ where: { type: 'auth.mfa_changed' } });
    type Payload = { userId: string; change: string; mfaEnrolled: boolean; stateVersion: number };
    const changes = events
      .map((event) => (event.envelope as { payload: Payload }).payload)
      .filter((payload) => payload.userId === userId)
      .map(({ change, mfaEnrolled, stateVersion }) => ({ change, mfaEnrolled, stateVersion }))
      .sort((a, b) => a.stateVersion - b.stateVersion);
    // The state each change left, in the order of the versions the database gave them.
    expect(changes).toEqual([
      { change: 'passkey_added', mfaEnrolled: true, stateVersion: 1 },
      { change: 'passkey_removed', mfaEnrolled: false, stateVersion: 2 },
    ]);
  });

  describe('a passkey sign-in racing the removal of its passkey or of the account', () => {
    const inOrder = <A, B>(userId: string, first: () => Promise<A>, second: () => Promise<B>) =>
      inLockOrder(
        world.transactions,
        world.db,
        (client) => lockUser(client, userId),
        first,
        second,
      );

    const activeSessions = async (userId: string) =>
      (await services().sessions.listActive(userId)).map((session) => session.id);

    it('ends the session of a sign-in that checked the assertion before the removal committed', async () => {
      const { passkeys } = services();
      const { userId, sessionId, authenticator, passkey } = await withPasskey();
      const assertion = authenticator.get(await passkeys.beginLogin());
      const [signIn, removal] = await inOrder(
        userId,
        () => passkeys.finishLogin(assertion, undefined, HOME),
        () => passkeys.remove(userId, sessionId, passkey.id),
      );
      expect(removal.status).toBe('fulfilled');
      if (signIn.status !== 'fulfilled') throw signIn.reason;
      const { tokens } = signIn.value as { tokens: { sessionId: string } };
      expect(await activeSessions(userId)).toEqual([sessionId]);
      expect(tokens.sessionId).not.toBe(sessionId);
    });

    it('ends the session of a password sign-in whose passkey, its second factor, was removed as it finished', async () => {
      const { passkeys, credentials } = services();
      const { userId, sessionId, authenticator, passkey } = await withPasskey();
      const password = await credentials.login({
        userId,
        email: 'ada@example.com',
        password: PASSWORD,
        userAgent: undefined,
        client: HOME,
      });
      const challenge = password.mfaChallenge?.challenge;
      if (!challenge) throw new Error('expected a second-factor challenge');
      const assertion = authenticator.get(await passkeys.beginLogin(challenge));
      const [signIn, removal] = await inOrder(
        userId,
        () => passkeys.finishLogin(assertion, undefined, HOME),
        () => passkeys.remove(userId, sessionId, passkey.id),
      );
      expect(removal.status).toBe('fulfilled');
      expect(signIn).toMatchObject({ status: 'fulfilled', value: { tokens: { userId } } });
      expect(await activeSessions(userId)).toEqual([sessionId]);
    });

    it('refuses a sign-in whose passkey was removed after it was read, opening nothing', async () => {
      const { passkeys } = services();
      const { userId, sessionId, authenticator, passkey } = await withPasskey();
      const assertion = authenticator.get(await passkeys.beginLogin());
      const [removal, signIn] = await inOrder(
        userId,
        () => passkeys.remove(userId, sessionId, passkey.id),
        () => passkeys.finishLogin(assertion, undefined, HOME),
      );
      expect(removal.status).toBe('fulfilled');
      expect(signIn.status).toBe('rejected');
      expect(signIn.status === 'rejected' && signIn.reason).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      expect(await activeSessions(userId)).toEqual([sessionId]);
    });

    it('registers no passkey to an account deleted while the registration finished', async () => {
      const { passkeys, credentials } = services();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, PASSWORD, undefined);
      const authenticator = createSoftwareAuthenticator(ORIGIN);
      const options = await passkeys.beginRegistration(userId, sessionId, 'ada@example.com');
      const response = authenticator.create(options);
      const [deleted, registered] = await inOrder(
        userId,
        () => deleteAsAdmin(credentials, userId, HOME),
        () => passkeys.finishRegistration(userId, sessionId, response, 'Laptop'),
      );
      expect(deleted.status).toBe('fulfilled');
      expect(registered.status === 'rejected' && registered.reason).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      expect(await world.db.passkey.count({ where: { userId } })).toBe(0);
    });

    it('leaves no live session on an account deleted while one of its sign-ins was finishing, either way round', async () => {
      const { passkeys, credentials } = services();
      const deleteAccount = (userId: string) => deleteAsAdmin(credentials, userId, HOME);
      for (const signInFirst of [true, false]) {
        const { userId, authenticator } = await withPasskey();
        const assertion = authenticator.get(await passkeys.beginLogin());
        const signIn = () => passkeys.finishLogin(assertion, undefined, HOME);
        const deletion = () => deleteAccount(userId);
        const [signedIn, deleted] = signInFirst
          ? await inOrder(userId, signIn, deletion)
          : (await inOrder(userId, deletion, signIn)).reverse();
        expect(signedIn?.status).toBe(signInFirst ? 'fulfilled' : 'rejected');
        expect(deleted?.status).toBe('fulfilled');
        expect(await activeSessions(userId)).toEqual([]);
        expect(await world.db.passkey.count({ where: { userId } })).toBe(0);
        // The deleted account's passkey opens nothing later either.
        const later = authenticator.get(await passkeys.beginLogin());
        expect(await appErrorOf(passkeys.finishLogin(later, undefined, HOME))).toMatchObject({
          code: 'UNAUTHENTICATED',
        });
      }
    });
  });
});
