import { randomUUID } from 'node:crypto';
import { createLogger } from '@platform/logger';
import {
  startTestOidcProvider,
  type TestOidcAccount,
  type TestOidcProvider,
} from '@platform/oidc-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcClient } from './oidc.client';
import type { OidcProviderConfig } from './oidc.config';
import type { OidcCompletion } from './oidc.service';
import type { AuthTx } from './auth.transactions';
import { deleteAsAdmin } from './testing/admin-deletion';
import { appErrorOf } from './testing/app-error';
import { createTestClock } from './testing/auth.fakes';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld, type WiringOptions } from './testing/auth.wiring';
import { inLockOrder } from './testing/lock-holder';
import { lockUser } from './user-lock';

const REDIRECT_URI = 'http://localhost:3000/oidc/callback';
const HOME = { address: '198.51.100.7' };

describe('OidcService against a real OpenID Connect provider, PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();
  const clock = createTestClock();
  let idp: TestOidcProvider;
  let providers: OidcProviderConfig[];
  /** While set, every request to the provider fails as an unreachable host does. */
  let unreachable = false;

  beforeAll(async () => {
    idp = await startTestOidcProvider({
      clients: [
        { clientId: 'platform', clientSecret: 'platform-secret', redirectUris: [REDIRECT_URI] },
        { clientId: 'other', clientSecret: 'other-secret', redirectUris: [REDIRECT_URI] },
      ],
    });
    const provider = (name: string, clientId: string, clientSecret: string) => ({
      name,
      issuer: idp.issuer,
      clientId,
      clientSecret,
      scopes: ['openid', 'email', 'profile'],
      redirectUris: [REDIRECT_URI],
    });
    providers = [
      provider('idp', 'platform', 'platform-secret'),
      provider('other', 'other', 'other-secret'),
    ];
  });
  afterAll(async () => {
    await idp?.close();
  });

  const services = (options: WiringOptions = {}) =>
    wireOverWorld(world, {
      clock,
      guessPolicy: { perClient: 50 },
      ...options,
      oidc: {
        providers,
        client: createOidcClient({
          logger: createLogger({ name: 'oidc-test', level: 'silent' }),
          allowHttp: true,
          retryDiscoveryAfterSeconds: 0,
          fetch: (url, init) =>
            unreachable ? Promise.reject(new TypeError('fetch failed')) : fetch(url, init),
        }),
      },
    });

  function person(overrides: Partial<TestOidcAccount> = {}): TestOidcAccount {
    const sub = randomUUID();
    const account = {
      sub,
      email: `${sub.slice(0, 8)}@example.com`,
      emailVerified: true,
      name: 'Ada',
      ...overrides,
    };
    idp.addAccount(account);
    return account;
  }

  /** Begins with the service, signs in at the provider as `sub`, and completes. */
  async function signInAs(
    oidc: ReturnType<typeof services>['oidc'],
    sub: string,
    tamperUrl: (url: URL) => void = () => undefined,
  ): Promise<OidcCompletion> {
    const { url, binding } = await oidc.begin('idp', REDIRECT_URI);
    const authorization = new URL(url);
    tamperUrl(authorization);
    const { code, state } = await idp.authorize(authorization.toString(), sub);
    return oidc.complete('idp', code, state, binding, 'Firefox', HOME);
  }

  /** The link token a first sign-in with `sub` offers (an identity no account has yet). */
  async function linkTokenOf(oidc: ReturnType<typeof services>['oidc'], sub: string) {
    const completion = await signInAs(oidc, sub);
    if (completion.kind !== 'unlinked')
      throw new Error(`expected unlinked, got ${completion.kind}`);
    return completion.linkToken;
  }

  /** A new account made through provider account `a` (no password), signed in. */
  async function accountThrough(oidc: ReturnType<typeof services>['oidc'], a: TestOidcAccount) {
    const userId = randomUUID();
    const linkToken = await linkTokenOf(oidc, a.sub);
    const { sessionId } = await oidc.createAccount(linkToken, userId, a.email!, undefined);
    return { userId, sessionId };
  }

  it('runs the code flow with PKCE, state and nonce: a verified new identity is offered for an account, and once linked signs its user in', async () => {
    const { oidc } = services();
    const ada = person();
    const { url, state, binding } = await oidc.begin('idp', REDIRECT_URI);
    const params = new URL(url).searchParams;
    expect(params.get('code_challenge_method')).toBe('S256');
    expect(params.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(params.get('nonce')).toBeTruthy();
    expect(params.get('state')).toBe(state);
    expect(params.get('redirect_uri')).toBe(REDIRECT_URI);
    // The verifier and nonce stay server-side, single-use, for a short while.
    const ttl = await world.redis.ttl(`auth:oidc-state:${state}`);
    expect(ttl).toBeGreaterThan(500);
    expect(ttl).toBeLessThanOrEqual(600);

    const callback = await idp.authorize(url, ada.sub);
    const first = await oidc.complete(
      'idp',
      callback.code,
      callback.state,
      binding,
      'Firefox',
      HOME,
    );
    expect(await world.redis.exists(`auth:oidc-state:${state}`)).toBe(0);
    if (first.kind !== 'unlinked') throw new Error(`expected unlinked, got ${first.kind}`);
    expect(first).toMatchObject({ provider: 'idp', email: ada.email, name: 'Ada' });

    const userId = randomUUID();
    const tokens = await oidc.createAccount(first.linkToken, userId, ada.email!, 'Firefox');
    expect(tokens.userId).toBe(userId);
    const row = await world.db.linkedAccount.findFirstOrThrow({ where: { userId } });
    expect(row).toMatchObject({ provider: 'idp', subject: ada.sub, email: ada.email });
    // The link token linked once.
    const again = await appErrorOf(
      oidc.createAccount(first.linkToken, randomUUID(), ada.email!, undefined),
    );
    expect(again.code).toBe('BAD_USER_INPUT');

    // Keyed by (provider, sub): a changed email at the provider still signs the same user in.
    idp.addAccount({ ...ada, email: 'changed@example.com' });
    const second = await signInAs(oidc, ada.sub);
    expect(second).toMatchObject({ kind: 'signed-in', userId });
  });

  it('refuses a replayed state: the second completion with the same callback fails, no 5xx', async () => {
    const { oidc } = services();
    const ada = person();
    const { url, binding } = await oidc.begin('idp', REDIRECT_URI);
    const { code, state } = await idp.authorize(url, ada.sub);
    await oidc.complete('idp', code, state, binding, undefined, HOME);
    const replay = await appErrorOf(oidc.complete('idp', code, state, binding, undefined, HOME));
    expect(replay.code).toBe('UNAUTHENTICATED');
    expect(replay.message).toBe('Sign-in with idp failed; begin again');
  });

  it('refuses an ID token whose signature was tampered with', async () => {
    const { oidc } = services();
    const ada = person();
    idp.tamperNextIdToken();
    const refused = await appErrorOf(signInAs(oidc, ada.sub));
    expect(refused.code).toBe('UNAUTHENTICATED');
    expect(await world.db.linkedAccount.count({ where: { subject: ada.sub } })).toBe(0);
  });

  it('refuses an ID token made for another nonce (an authorization response injected from another request)', async () => {
    const { oidc } = services();
    const ada = person();
    const refused = await appErrorOf(
      signInAs(oidc, ada.sub, (url) => url.searchParams.set('nonce', 'the-attackers-nonce')),
    );
    expect(refused.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a code redeemed without its PKCE verifier (a challenge the attacker chose)', async () => {
    const { oidc } = services();
    const ada = person();
    const refused = await appErrorOf(
      signInAs(oidc, ada.sub, (url) =>
        url.searchParams.set('code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'),
      ),
    );
    expect(refused.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an unverified or missing email_verified, creating and linking nothing', async () => {
    const { oidc } = services();
    for (const emailVerified of [false, undefined]) {
      const eve = person({ emailVerified });
      const refused = await appErrorOf(signInAs(oidc, eve.sub));
      expect(refused.code).toBe('UNAUTHENTICATED');
      expect(refused.reason).toBe('EMAIL_NOT_VERIFIED');
      expect(await world.db.linkedAccount.count({ where: { subject: eve.sub } })).toBe(0);
    }
  });

  it('refuses a state issued for another provider, and a redirect URI not on the allow-list', async () => {
    const { oidc } = services();
    const ada = person();
    const { url, binding } = await oidc.begin('idp', REDIRECT_URI);
    const { code, state } = await idp.authorize(url, ada.sub);
    const crossed = await appErrorOf(oidc.complete('other', code, state, binding, undefined, HOME));
    expect(crossed.code).toBe('UNAUTHENTICATED');

    const elsewhere = await appErrorOf(oidc.begin('idp', 'https://attacker.example/callback'));
    expect(elsewhere).toMatchObject({ code: 'BAD_USER_INPUT', field: 'redirectUri' });
    const unknown = await appErrorOf(oidc.begin('nope', REDIRECT_URI));
    expect(unknown).toMatchObject({ code: 'BAD_USER_INPUT', field: 'provider' });
  });

  it('counts failed completions against the address for that provider (RATE_LIMITED past the limit)', async () => {
    const { oidc } = services({ guessPolicy: { perClient: 3 } });
    const from = { address: '203.0.113.99' };
    for (let i = 0; i < 3; i++)
      expect(
        (await appErrorOf(oidc.complete('idp', 'code', `state-${i}`, 'x', undefined, from))).code,
      ).toBe('UNAUTHENTICATED');
    const limited = await appErrorOf(oidc.complete('idp', 'code', 'state-x', 'x', undefined, from));
    expect(limited.code).toBe('RATE_LIMITED');
    // Another address, or another provider, is not held back.
    const other = await appErrorOf(oidc.complete('other', 'code', 'state-y', 'x', undefined, from));
    expect(other.code).toBe('UNAUTHENTICATED');
  });

  it('answers SERVICE_UNAVAILABLE while the provider cannot be reached, and recovers without a restart', async () => {
    const { oidc } = services();
    unreachable = true;
    try {
      const down = await appErrorOf(oidc.begin('idp', REDIRECT_URI));
      expect(down.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      unreachable = false;
    }
    const { url } = await oidc.begin('idp', REDIRECT_URI);
    expect(url.startsWith(`${idp.issuer}/`)).toBe(true);
  });

  it('unlinks under a row lock: of the last two linked accounts of a user with no password, one stays', async () => {
    const { oidc } = services();
    const [a, b] = [person(), person()];
    const { userId, sessionId } = await accountThrough(oidc, a);
    // b's email is not the user's: the link token is bound to the verified email.
    const wrongEmail = await appErrorOf(
      oidc.link(userId, sessionId, a.email!, await linkTokenOf(oidc, b.sub)),
    );
    expect(wrongEmail.code).toBe('BAD_USER_INPUT');
    await oidc.link(userId, sessionId, b.email!, await linkTokenOf(oidc, b.sub));
    const linked = await oidc.list(userId);
    expect(linked).toHaveLength(2);
    const outcomes = await Promise.allSettled(
      linked.map((account) => oidc.unlink(userId, sessionId, account.id)),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    expect(await oidc.list(userId)).toHaveLength(1);
  });

  it('ends the other sessions when a provider is unlinked: none opened through it outlives it', async () => {
    const { oidc } = services();
    const [a, b] = [person(), person()];
    const { userId, sessionId } = await accountThrough(oidc, a);
    await oidc.link(userId, sessionId, b.email!, await linkTokenOf(oidc, b.sub));
    // Whoever holds the provider account b signs in through it.
    const elsewhere = await signInAs(oidc, b.sub);
    if (elsewhere.kind !== 'signed-in')
      throw new Error(`expected signed-in, got ${elsewhere.kind}`);
    const link = (await oidc.list(userId)).find((account) => account.email === b.email);
    await oidc.unlink(userId, sessionId, link!.id);
    const revokedAt = async (id: string) =>
      (await world.db.session.findUniqueOrThrow({ where: { id } })).revokedAt;
    expect(await revokedAt(elsewhere.tokens.sessionId)).not.toBeNull();
    expect(await revokedAt(sessionId)).toBeNull();
  });

  it('leaves no session opened through a provider unlinked while the sign-in finished, either way round', async () => {
    const { oidc, sessions } = services();
    for (const signInFirst of [true, false]) {
      const [a, b] = [person(), person()];
      const { userId, sessionId } = await accountThrough(oidc, a);
      await oidc.link(userId, sessionId, b.email!, await linkTokenOf(oidc, b.sub));
      const link = (await oidc.list(userId)).find((account) => account.email === b.email);
      // At the provider before the lock is held: only the completion queues for it.
      const { url, binding } = await oidc.begin('idp', REDIRECT_URI);
      const { code, state } = await idp.authorize(url, b.sub);
      const signIn = () => oidc.complete('idp', code, state, binding, 'Firefox', HOME);
      const unlink = () => oidc.unlink(userId, sessionId, link!.id);
      const take = (client: AuthTx) => lockUser(client, userId);
      const [signedIn, unlinked] = signInFirst
        ? await inLockOrder(world.transactions, world.db, take, signIn, unlink)
        : (await inLockOrder(world.transactions, world.db, take, unlink, signIn)).reverse();
      expect(unlinked?.status).toBe('fulfilled');
      if (signInFirst) expect(signedIn).toMatchObject({ value: { kind: 'signed-in', userId } });
      else
        expect(signedIn?.status === 'rejected' && signedIn.reason).toMatchObject({
          code: 'UNAUTHENTICATED',
        });
      const active = (await sessions.listActive(userId)).map((session) => session.id);
      expect(active).toEqual([sessionId]);
    }
  });

  it('links nothing to an account deleted while the link finished, either way round', async () => {
    const { oidc, credentials } = services();
    for (const linkFirst of [true, false]) {
      const ada = person();
      const userId = randomUUID();
      const { sessionId } = await credentials.create(userId, 'correct horse battery', undefined);
      const linkToken = await linkTokenOf(oidc, ada.sub);
      const link = () => oidc.link(userId, sessionId, ada.email!, linkToken);
      const deletion = () => deleteAsAdmin(credentials, userId, HOME);
      const take = (client: AuthTx) => lockUser(client, userId);
      const [linked, deleted] = linkFirst
        ? await inLockOrder(world.transactions, world.db, take, link, deletion)
        : (await inLockOrder(world.transactions, world.db, take, deletion, link)).reverse();
      expect(deleted?.status).toBe('fulfilled');
      expect(linked?.status).toBe(linkFirst ? 'fulfilled' : 'rejected');
      expect(await world.db.linkedAccount.count({ where: { userId } })).toBe(0);
      // The provider account is free to sign up again.
      expect(await signInAs(oidc, ada.sub)).toMatchObject({ kind: 'unlinked' });
    }
  });

  it('never lets unlinking the last provider and removing the last passkey at once leave no way in, every time', async () => {
    const { oidc, passkeys } = services();
    for (let round = 0; round < 5; round++) {
      const userId = randomUUID();
      const ada = person();
      const first = await signInAs(oidc, ada.sub);
      if (first.kind !== 'unlinked') throw new Error('expected unlinked');
      const { sessionId } = await oidc.createAccount(
        first.linkToken,
        userId,
        ada.email!,
        undefined,
      );
      const passkey = await world.db.passkey.create({
        data: {
          userId,
          credentialId: `credential-${randomUUID()}`,
          publicKey: Buffer.from('not a real key'),
          counter: 0n,
          transports: [],
          name: 'Laptop',
          aaguid: '00000000-0000-0000-0000-000000000000',
          backedUp: false,
        },
      });
      const [link] = await oidc.list(userId);
      const outcomes = await Promise.allSettled([
        oidc.unlink(userId, sessionId, link!.id),
        passkeys.remove(userId, sessionId, passkey.id),
      ]);
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
      const left =
        (await world.db.linkedAccount.count({ where: { userId } })) +
        (await world.db.passkey.count({ where: { userId } }));
      expect(left).toBe(1);
    }
  });
});
