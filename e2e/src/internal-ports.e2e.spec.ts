import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { graphql, signUp } from './graphql.client';

const SUBGRAPHS = ['users-subgraph', 'rbac-subgraph', 'notifications-subgraph'] as const;

describe('the subgraphs serve only the gateway, whatever reaches their ports', () => {
  let platform: Platform | undefined;
  let victimId: string;

  beforeAll(async () => {
    platform = await startPlatform();
    victimId = (await signUp(platform.gateway, 'victim@example.com')).id;
  });

  afterAll(() => stopPlatform(platform));

  const direct = (subgraph: (typeof SUBGRAPHS)[number], query: string, headers = {}) =>
    fetch(`${platform!.apps.httpUrl(subgraph)}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query }),
    });

  it.each(SUBGRAPHS)('%s refuses a caller without the internal credential', async (subgraph) => {
    const response = await direct(subgraph, '{ _service { sdl } }');
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      errors: [
        {
          message: 'Missing or invalid internal credential',
          extensions: { code: 'UNAUTHENTICATED' },
        },
      ],
    });
  });

  it('gives nobody a user’s email through _entities on the users subgraph’s port', async () => {
    const query = `{ _entities(representations: [{ __typename: "User", id: "${victimId}" }]) { ... on User { email } } }`;
    for (const headers of [{}, { 'x-internal-token': 'guessed-credential-of-32-characters!' }]) {
      const response = await direct('users-subgraph', query, headers);
      expect(response.status).toBe(401);
      expect(JSON.stringify(await response.json())).not.toContain('victim@example.com');
    }
  });

  it('does not let a caller choose the client address rate limits are keyed by', async () => {
    const response = await direct(
      'users-subgraph',
      'mutation { login(email: "victim@example.com", password: "wrong password") { accessToken } }',
      { 'x-client-address': '203.0.113.7' },
    );
    expect(response.status).toBe(401);
  });

  it('refuses a WebSocket connection without the internal credential', async () => {
    const url = `${platform!.apps.httpUrl('notifications-subgraph').replace(/^http/, 'ws')}/graphql`;
    const socket = new WebSocket(url, 'graphql-transport-ws');
    await new Promise<void>((resolve) => socket.once('open', () => resolve()));
    socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    const code = await new Promise<number>((resolve) => socket.once('close', resolve));
    expect(code).toBe(4403);
  });

  it('still answers through the gateway', async () => {
    const response = await graphql<{ login: { user: { id: string } } }>(
      platform!.gateway,
      'mutation { login(email: "victim@example.com", password: "correct horse battery") { user { id } } }',
    );
    expect(response.data?.login.user.id).toBe(victimId);
  });
});
