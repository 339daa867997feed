import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { codeOf, graphql, signUp, type GraphQLResponse, type SignedIn } from './graphql.client';

const PREFERENCES = `mutation ($input: [NotificationPreferenceInput!]!) {
  updateNotificationPreferences(input: $input) { type } }`;
const STORED = '{ me { notificationPreferences { type } } }';

/** `count` preference changes for new types `<prefix>0`, `<prefix>1`, ... */
const types = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, n) => ({ type: `${prefix}${n}`, email: true }));

describe('caps: notification preferences per user', () => {
  let platform: Platform | undefined;
  let gateway: string;
  let users = 0;

  beforeAll(async () => {
    platform = await startPlatform();
    ({ gateway } = platform);
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  const change = (who: SignedIn, input: unknown[]) =>
    graphql<{ updateNotificationPreferences: { type: string }[] }>(gateway, PREFERENCES, {
      token: who.token,
      variables: { input },
    });

  async function ok(response: Promise<GraphQLResponse<unknown>>) {
    const { data, errors } = await response;
    if (!data) throw new Error(JSON.stringify(errors));
  }

  async function listed(who: SignedIn): Promise<number> {
    const response = await graphql<{ me: { notificationPreferences: unknown[] } }>(
      gateway,
      STORED,
      { token: who.token },
    );
    return response.data!.me.notificationPreferences.length;
  }

  it('stores preferences for at most 100 types per user, naming `input` beyond it', async () => {
    const user = await signUp(gateway, `caps-${++users}@example.com`);
    const known = await listed(user);
    await ok(change(user, types('a', 50)));
    await ok(change(user, types('b', 50)));
    const refused = await change(user, types('c', 1));
    expect(codeOf(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors?.[0]?.message).toMatch(/^input: at most 100 /);
    // Stored types still change.
    await ok(change(user, [{ type: 'a0', email: false }]));
    expect(await listed(user)).toBe(known + 100);
  });

  it('lets only one of two changes at once pass the cap when both together would not', async () => {
    const user = await signUp(gateway, `caps-${++users}@example.com`);
    const known = await listed(user);
    await ok(change(user, types('a', 40)));
    await ok(change(user, types('b', 40)));
    const outcomes = await Promise.all([
      change(user, types('c', 15)),
      change(user, types('d', 15)),
    ]);
    expect(outcomes.map((outcome) => codeOf(outcome) ?? 'ok').sort()).toEqual([
      'BAD_USER_INPUT',
      'ok',
    ]);
    expect(await listed(user)).toBe(known + 95);
  });
});
