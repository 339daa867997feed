import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GraphQLError } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_TOKEN_HEADER } from '@platform/grpc';
import { SubgraphDataSource } from './subgraph.data-source';
import { createSubgraphFetcher } from './subgraph.fetcher';

interface Received {
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A subgraph stand-in: answers with the status, content type and body the test sets. */
async function subgraph(): Promise<{
  url: string;
  server: Server;
  received: Received[];
  answer: (status: number, body: string, contentType?: string) => void;
}> {
  const received: Received[] = [];
  let reply = { status: 200, body: '{"data":{}}', contentType: 'application/json' };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) as unknown });
      res.writeHead(reply.status, { 'content-type': reply.contentType });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    server,
    received,
    answer: (status, body, contentType = 'application/json') => {
      reply = { status, body, contentType };
    },
  };
}

describe('subgraph data source', () => {
  const client = createSubgraphFetcher({ timeoutMs: 2_000 });
  let target: Awaited<ReturnType<typeof subgraph>>;
  let source: SubgraphDataSource;
  beforeAll(async () => {
    target = await subgraph();
    source = new SubgraphDataSource({ url: target.url, client, internalToken: 'internal-secret' });
  });
  afterAll(async () => {
    await client.close();
    target.server.close();
  });

  // What @apollo/gateway's plan executor passes for a fetch (the parts the data source reads).
  const fetchEntities = () =>
    source.process({
      kind: 'incoming operation',
      request: {
        query: 'query Q($r: [_Any!]!) { _entities(representations: $r) { __typename } }',
        variables: { r: [{ __typename: 'User', id: 'u1' }] },
        operationName: 'Q',
      },
      context: {
        authorization: 'Bearer a.b.c',
        correlationId: 'corr-1',
        userAgent: 'test-agent',
        clientAddress: '203.0.113.9',
        tokenCheck: undefined,
      },
      incomingRequestContext: {},
      pathInIncomingRequest: [],
    } as unknown as Parameters<SubgraphDataSource['process']>[0]);

  it('POSTs the operation as JSON with the caller, the correlation id and the internal credential', async () => {
    target.answer(200, '{"data":{"_entities":[{"__typename":"User"}]}}');
    const response = await fetchEntities();
    expect(response.data).toEqual({ _entities: [{ __typename: 'User' }] });
    const sent = target.received.at(-1);
    expect(sent?.body).toEqual({
      query: 'query Q($r: [_Any!]!) { _entities(representations: $r) { __typename } }',
      variables: { r: [{ __typename: 'User', id: 'u1' }] },
      operationName: 'Q',
    });
    expect(sent?.headers).toMatchObject({
      'content-type': 'application/json',
      [INTERNAL_TOKEN_HEADER]: 'internal-secret',
      authorization: 'Bearer a.b.c',
      'x-correlation-id': 'corr-1',
      'user-agent': 'test-agent',
      'x-client-address': '203.0.113.9',
    });
  });

  it('passes on the errors a subgraph answered', async () => {
    target.answer(
      200,
      '{"data":null,"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}',
    );
    const response = await fetchEntities();
    expect(response.errors).toEqual([{ message: 'no', extensions: { code: 'FORBIDDEN' } }]);
  });

  it.each([
    [401, 'UNAUTHENTICATED'],
    [403, 'FORBIDDEN'],
    [502, undefined],
  ])('turns an HTTP %i answer into an error with code %s, as stock does', async (status, code) => {
    target.answer(status, '{"errors":[{"message":"refused"}]}');
    const error = (await fetchEntities().catch((caught: unknown) => caught)) as GraphQLError;
    expect(error.message).toBe(`${status}: `);
    expect(error.extensions['code']).toBe(code);
    expect(error.extensions['response']).toMatchObject({
      status,
      body: { errors: [{ message: 'refused' }] },
    });
  });

  it('refuses a body that is not a JSON object', async () => {
    target.answer(200, 'upstream says hello', 'text/plain');
    await expect(fetchEntities()).rejects.toThrow(
      'Expected JSON response body, but received: upstream says hello',
    );
  });
});
