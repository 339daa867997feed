import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@platform/testing';
import { codeOf, graphql, signUp } from './graphql.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

interface Tokens {
  accessToken: string;
  refreshToken: string;
  user: { id: string };
}

const TOKEN_FIELDS = 'accessToken refreshToken user { id }';
const LOGIN = `mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { ${TOKEN_FIELDS} } }`;
const REFRESH = `mutation ($token: String!) { refreshSession(refreshToken: $token) { ${TOKEN_FIELDS} } }`;
const EMAIL = 'chain@example.com';
const PASSWORD = 'correct horse battery';
// Long enough for a round of requests on a busy two-core machine, short enough to wait out.
const GRACE_SECONDS = 3;
const ROUNDS = 5;
const REPLAYS = 5;

describe('a session keeps one chain of refresh tokens, through the gateway', () => {
  let platform: Platform | undefined;
  let gateway: string;
  let userId: string;

  beforeAll(async () => {
    platform = await startPlatform({
      'auth-service': { REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS) },
    });
    gateway = platform.gateway;
    userId = (await signUp(gateway, EMAIL, PASSWORD)).id;
  });

  afterAll(() => stopPlatform(platform));

  /** A new session, as signing in on another device gives one. */
  async function signInAgain(): Promise<Tokens> {
    const response = await graphql<{ login: Tokens }>(gateway, LOGIN, {
      variables: { email: EMAIL, password: PASSWORD },
    });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.login;
  }

  const refresh = (token: string) =>
    graphql<{ refreshSession: Tokens }>(gateway, REFRESH, { variables: { token } });

  async function refreshed(token: string): Promise<Tokens> {
    const response = await refresh(token);
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.refreshSession;
  }

  const whoAmI = async (accessToken: string) => {
    const response = await graphql<{ me: { id: string } }>(gateway, '{ me { id } }', {
      token: accessToken,
    });
    return response.data?.me.id ?? codeOf(response);
  };

  it('gives two tabs refreshing at the same moment the same token, and both stay signed in, every round', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const signedIn = await signInAgain();
      const tabs = await Promise.all([
        refreshed(signedIn.refreshToken),
        refreshed(signedIn.refreshToken),
      ]);
      expect(tabs[0].refreshToken).not.toBe(signedIn.refreshToken);
      expect(tabs[1].refreshToken).toBe(tabs[0].refreshToken);
      for (const tab of tabs) expect(await whoAmI(tab.accessToken)).toBe(userId);
      // Either tab refreshes next as usual.
      const next = await refreshed(tabs[1].refreshToken);
      expect(await whoAmI(next.accessToken)).toBe(userId);
    }
  });

  it('answers every replay of a rotated token within the grace window with the live token, and ends the session on one after it, every round', async () => {
    const sessions: { stolen: string; owner: Tokens; replayed: Tokens[] }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const signedIn = await signInAgain();
      const owner = await refreshed(signedIn.refreshToken);
      // Someone else presents the rotated token five times at once within the window.
      const replayed = await Promise.all(
        Array.from({ length: REPLAYS }, () => refreshed(signedIn.refreshToken)),
      );
      expect(replayed.map((tokens) => tokens.refreshToken)).toEqual(
        Array(REPLAYS).fill(owner.refreshToken),
      );
      for (const tokens of replayed) expect(await whoAmI(tokens.accessToken)).toBe(userId);

      // The owner rotates on; a replay of the token it rotated away leads to the new one.
      const ownerNext = await refreshed(owner.refreshToken);
      expect((await refreshed(owner.refreshToken)).refreshToken).toBe(ownerNext.refreshToken);
      sessions.push({ stolen: owner.refreshToken, owner: ownerNext, replayed });
    }

    // Once the window has passed, the copies the replays got are someone else's: presenting
    // one ends the session, the owner's token and every access token issued in it.
    for (const { stolen, owner, replayed } of sessions) {
      await eventually(
        async () => expect(codeOf(await refresh(stolen))).toBe('UNAUTHENTICATED'),
        (GRACE_SECONDS + 10) * 1000,
        250,
      );
      expect(codeOf(await refresh(owner.refreshToken))).toBe('UNAUTHENTICATED');
      for (const { accessToken } of [owner, ...replayed]) {
        expect(await whoAmI(accessToken)).toBe('UNAUTHENTICATED');
      }
    }
  });
});
