import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientAddressOf } from './client-address';

/** What the gateway takes as the client's address, for a request with these header lines. */
describe(clientAddressOf.name, () => {
  let server: Server;
  let port: number;
  let trusted = 0;

  beforeAll(async () => {
    server = createServer((req, res) => res.end(clientAddressOf(req, trusted) ?? ''));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Sends raw header lines (a header may repeat) with `trustedProxies` set on the server. */
  async function addressFor(trustedProxies: number, ...forwarded: string[]): Promise<string> {
    trusted = trustedProxies;
    // An array sends one header line per value.
    const headers = forwarded.length > 0 ? { 'x-forwarded-for': forwarded } : {};
    return new Promise((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', headers }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject).end();
    });
  }

  it('is the connection peer unless a proxy is trusted, whatever the header says', async () => {
    expect(await addressFor(0)).toBe('127.0.0.1');
    expect(await addressFor(0, '203.0.113.9')).toBe('127.0.0.1');
  });

  it('is what the trusted proxy appended, not what the client wrote before it', async () => {
    // A proxy that replaces the header (ingress-nginx by default) sends one entry.
    expect(await addressFor(1, '198.51.100.7')).toBe('198.51.100.7');
    // A proxy that appends: the client's own header comes first, the peer the proxy saw last.
    expect(await addressFor(1, '203.0.113.9, 10.0.0.1, 198.51.100.7')).toBe('198.51.100.7');
    expect(await addressFor(1, '203.0.113.9', '198.51.100.7')).toBe('198.51.100.7');
    expect(await addressFor(1, ' 203.0.113.9 ,,198.51.100.7 ')).toBe('198.51.100.7');
  });

  it('drops the port a proxy may write after the address', async () => {
    expect(await addressFor(1, '198.51.100.7:51234')).toBe('198.51.100.7');
    expect(await addressFor(1, '[2001:db8::1]:51234')).toBe('2001:db8::1');
    expect(await addressFor(1, '[2001:db8::1]')).toBe('2001:db8::1');
    expect(await addressFor(1, '2001:db8::1')).toBe('2001:db8::1');
  });

  it('counts trusted hops from the right, and stops at the outermost entry', async () => {
    expect(await addressFor(2, '203.0.113.9, 198.51.100.7, 10.0.0.5')).toBe('198.51.100.7');
    expect(await addressFor(3, '198.51.100.7, 10.0.0.5')).toBe('198.51.100.7');
  });

  it('is the connection peer when a trusted proxy sent no address', async () => {
    expect(await addressFor(1)).toBe('127.0.0.1');
    expect(await addressFor(1, ' , ')).toBe('127.0.0.1');
  });
});
