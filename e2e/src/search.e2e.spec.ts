import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { graphql } from './graphql.client';

const REGISTER = `mutation ($input: RegisterInput!) { register(input: $input) { user { id } } }`;
const USERS = `query ($search: String) {
  users(first: 100, search: $search) { totalCount edges { node { id displayName } } } }`;

interface UsersPage {
  users: { totalCount: number; edges: { node: { id: string; displayName: string } }[] };
}

describe('users(search:): LIKE metacharacters match themselves', () => {
  let platform: Platform | undefined;
  let gateway: string;

  beforeAll(async () => {
    platform = await startPlatform();
    ({ gateway } = platform);
  });

  afterAll(async () => {
    await stopPlatform(platform);
  });

  async function register(email: string, displayName: string): Promise<string> {
    const response = await graphql<{ register: { user: { id: string } } }>(gateway, REGISTER, {
      variables: { input: { email, password: 'correct horse battery', displayName } },
    });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.register.user.id;
  }

  async function search(term: string): Promise<UsersPage['users']> {
    const response = await graphql<UsersPage>(gateway, USERS, {
      token: platform!.admin.token,
      variables: { search: term },
    });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.users;
  }

  it('finds only the users whose name starts with `%` or `_` when searching for them', async () => {
    const percent = await register('percent@example.com', '%off sale');
    const underscore = await register('underscore@example.com', '_under score');
    await register('plain@example.com', 'Plain');
    await register('xoff@example.com', 'xoff sale');

    const byPercent = await search('%');
    expect(byPercent.edges.map((edge) => edge.node.id)).toEqual([percent]);
    expect(byPercent.totalCount).toBe(1);
    expect((await search('_')).edges.map((edge) => edge.node.id)).toEqual([underscore]);
    expect((await search('%OFF')).edges.map((edge) => edge.node.id)).toEqual([percent]);
    // Without them, the search still matches the start of a name or an email.
    expect((await search('xoff')).totalCount).toBe(1);
    expect((await search('plain@')).totalCount).toBe(1);
  });
});
