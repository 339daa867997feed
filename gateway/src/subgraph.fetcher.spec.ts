import { createServer, type Server, type ServerResponse } from 'node:http';
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

describe('subgraph fetcher answers', () => {
  const client = createSubgraphFetcher({ timeoutMs: 500 });
  const servers: Server[] = [];
  afterAll(async () => {
    await client.close();
    for (const server of servers) server.close();
  });

  /** A server answering every request with `answer`. */
  async function serve(answer: (res: ServerResponse) => void): Promise<string> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  }

  it('reads an answer sent in many pieces, characters split between them, as one text', async () => {
    const text = JSON.stringify({ data: { title: 'Grüße € 😀 '.repeat(3_000) } });
    const bytes = Buffer.from(text, 'utf8');
    const url = await serve((res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-kind': 'pieces' });
      // Pieces of 7,001 bytes, each written on its own: multi-byte characters straddle them.
      let offset = 0;
      const next = () => {
        if (offset >= bytes.length) {
          res.end();
          return;
        }
        res.write(bytes.subarray(offset, (offset += 7_001)));
        setImmediate(next);
      };
      next();
    });
    const reply = await client.post(url, {}, '{}');
    expect(reply.status).toBe(201);
    expect(reply.headers['x-kind']).toBe('pieces');
    expect(reply.text).toBe(text);
  });

  it('takes the final answer after an informational one', async () => {
    const url = await serve((res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' }, () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"data":{"ok":true}}');
      });
    });
    const reply = await client.post(url, {}, '{}');
    expect(reply.status).toBe(200);
    expect(reply.headers['link']).toBeUndefined();
    expect(reply.text).toBe('{"data":{"ok":true}}');
  });

  it('fails a request whose answer stops coming', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":');
    });
    await expect(client.post(url, {}, '{}')).rejects.toMatchObject({
      code: 'UND_ERR_BODY_TIMEOUT',
    });
  });
});
