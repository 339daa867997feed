import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubgraphFetcher, subgraphInstances } from './subgraph.fetcher';

/** A subgraph instance stand-in that answers with its name and counts what it received. */
async function instance(
  name: string,
): Promise<{ url: string; received: string[]; server: Server }> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push(body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: { name } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    received,
    server,
  };
}

/** A port nothing listens on: connections are refused. */
async function refusingUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/graphql`;
}

describe('subgraph fetcher over several instances', () => {
  const client = createSubgraphFetcher({ timeoutMs: 2_000 });
  let a: Awaited<ReturnType<typeof instance>>;
  let b: Awaited<ReturnType<typeof instance>>;
  beforeAll(async () => {
    a = await instance('a');
    b = await instance('b');
  });
  afterAll(async () => {
    await client.close();
    for (const { server } of [a, b]) server.close();
  });

  const ask = async (url: string, body = '{"query":"mutation { x }"}') => {
    const reply = await client.post(url, {}, body);
    return (JSON.parse(reply.text) as { data: { name: string } }).data.name;
  };

  it('reads one URL or a comma-separated list', () => {
    expect(subgraphInstances('http://a/graphql')).toEqual(['http://a/graphql']);
    expect(subgraphInstances('http://a/graphql, http://b/graphql')).toEqual([
      'http://a/graphql',
      'http://b/graphql',
    ]);
  });

  it('keeps one URL as it was', async () => {
    expect(await ask(a.url)).toBe('a');
  });

  it('spreads requests over the listed instances', async () => {
    const names = [];
    for (let n = 0; n < 6; n++) names.push(await ask(`${a.url},${b.url}`));
    expect(names.filter((name) => name === 'a')).toHaveLength(3);
    expect(names.filter((name) => name === 'b')).toHaveLength(3);
  });

  it('sends a request an instance refused to connect to the next one, once', async () => {
    const dead = await refusingUrl();
    const before = b.received.length;
    const names = [];
    for (let n = 0; n < 6; n++) names.push(await ask(`${dead},${b.url}`, `{"n":${n}}`));
    expect(names).toEqual(['b', 'b', 'b', 'b', 'b', 'b']);
    // Each mutation reached the live instance exactly once.
    expect(b.received.slice(before)).toEqual([0, 1, 2, 3, 4, 5].map((n) => `{"n":${n}}`));
  });

  it('fails when every instance refuses', async () => {
    await expect(ask(`${await refusingUrl()},${await refusingUrl()}`)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});
