import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createHttpServer, readJsonBody, sendJson } from './http-server';

const logger = createLogger({ name: 'http-test', level: 'silent' });

describe('createHttpServer', () => {
  it('lets an in-flight request finish on close, then refuses new connections', async () => {
    let release: () => void = () => undefined;
    let arrived: () => void = () => undefined;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    const http = createHttpServer({
      logger,
      routes: {
        '/slow': async (_req, res) => {
          const released = new Promise<void>((resolve) => (release = resolve));
          arrived();
          await released;
          sendJson(res, 200, { done: true });
        },
      },
    });
    const port = await http.listen('127.0.0.1', 0);
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
    await requestArrived;

    const closed = http.close();
    release();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true });
    await closed;
    await expect(fetch(`http://127.0.0.1:${port}/slow`)).rejects.toThrow();
  });

  it('answers a request sent on an idle keep-alive connection just as it closes, with Connection: close', async () => {
    for (let round = 0; round < 5; round++) {
      const http = createHttpServer({
        logger,
        routes: { '/ok': (_req, res) => sendJson(res, 200, { ok: true }) },
      });
      const port = await http.listen('127.0.0.1', 0);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const get = () =>
        new Promise<{ status: number; connection: string | undefined; reused: boolean }>(
          (resolve, reject) => {
            const req = request({ port, host: '127.0.0.1', path: '/ok', agent }, (res) => {
              res.resume();
              res.once('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  connection: res.headers.connection,
                  reused: req.reusedSocket,
                }),
              );
            });
            req.once('error', reject);
            req.end();
          },
        );
      expect((await get()).status).toBe(200); // the connection is now idle, kept alive
      const closed = http.close();
      // The client sends on its idle connection right as the server closes: answered, and
      // told to stop using the connection (before, the socket was destroyed under it).
      expect(await get()).toEqual({ status: 200, connection: 'close', reused: true });
      await closed;
      agent.destroy();
    }
  });

  it('echoes a well-formed correlation id and answers unknown paths with 404', async () => {
    const http = createHttpServer({ logger, routes: {} });
    const port = await http.listen('127.0.0.1', 0);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/nope`, {
        headers: { 'x-correlation-id': 'client-chosen-id-1' },
      });
      expect(response.status).toBe(404);
      expect(response.headers.get('x-correlation-id')).toBe('client-chosen-id-1');
    } finally {
      await http.close();
    }
  });

  it('routes a request whose target is in absolute form (http://host/path) as its path', async () => {
    const http = createHttpServer({
      logger,
      routes: { '/graphql': (_req, res) => sendJson(res, 200, { routed: true }) },
    });
    const port = await http.listen('127.0.0.1', 0);
    try {
      for (const [target, status] of [
        ['http://gateway.example/graphql?query=x', 200],
        ['/graphql?query=x', 200],
        ['http://gateway.example/nope', 404],
      ] as const) {
        const socket = connect(port, '127.0.0.1');
        socket.write(
          `GET ${target} HTTP/1.1\r\nHost: gateway.example\r\nConnection: close\r\n\r\n`,
        );
        const reply = await new Promise<string>((resolve) => {
          let text = '';
          socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
          socket.once('close', () => resolve(text));
        });
        expect(reply.slice(0, 12)).toBe(`HTTP/1.1 ${status}`);
      }
    } finally {
      await http.close();
    }
  });

  it('refuses a body that is not JSON with 400, without internals', async () => {
    const { readJsonBody } = await import('./http-server');
    const http = createHttpServer({
      logger,
      routes: { '/echo': async (req, res) => sendJson(res, 200, await readJsonBody(req)) },
    });
    const port = await http.listen('127.0.0.1', 0);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/echo`, {
        method: 'POST',
        body: '{oops',
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'request body is not valid JSON' });
    } finally {
      await http.close();
    }
  });

  it('sends security headers with every response, and HSTS only over TLS', async () => {
    const http = createHttpServer({
      logger,
      routes: { '/x': (_req, res) => sendJson(res, 200, {}) },
      isSecure: (req) => req.headers['x-forwarded-proto'] === 'https',
    });
    const port = await http.listen('127.0.0.1', 0);
    try {
      for (const path of ['/x', '/missing']) {
        const response = await fetch(`http://127.0.0.1:${port}${path}`);
        expect(response.headers.get('x-content-type-options')).toBe('nosniff');
        expect(response.headers.get('x-frame-options')).toBe('DENY');
        expect(response.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
        expect(response.headers.get('strict-transport-security')).toBeNull();
      }
      const secure = await fetch(`http://127.0.0.1:${port}/x`, {
        headers: { 'x-forwarded-proto': 'https' },
      });
      expect(secure.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
    } finally {
      await http.close();
    }
  });

  it('answers a body over 1 MiB with 413 that every sender receives, with or without a length, many at once', async () => {
    const http = createHttpServer({
      logger,
      routes: {
        '/graphql': async (req, res) => sendJson(res, 200, { body: await readJsonBody(req) }),
      },
    });
    const port = await http.listen('127.0.0.1', 0);
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    // 3 MiB of valid JSON, written in 64 KiB chunks as a client uploading it would.
    const body = Buffer.from(JSON.stringify({ query: 'x'.repeat(3 * 1024 * 1024) }));
    const post = (withLength: boolean) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          {
            port,
            host: '127.0.0.1',
            path: '/graphql',
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              ...(withLength ? { 'content-length': body.length } : {}),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        // A reset before the answer arrived is what this test is about: it fails the test.
        req.once('error', reject);
        for (let at = 0; at < body.length; at += 64 * 1024)
          req.write(body.subarray(at, at + 64 * 1024));
        req.end();
      });
    try {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => post(i % 2 === 0)));
        for (const answer of answers) {
          expect(answer.status).toBe(413);
          expect(JSON.parse(answer.text)).toEqual({ error: 'request body too large' });
        }
      }
      // The server still answers normal requests afterwards.
      const small = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ a }' }),
      });
      expect(await small.json()).toEqual({ body: { query: '{ a }' } });
    } finally {
      agent.destroy();
      await http.close();
    }
  });

  it('answers a body declared over 1 MiB with Expect: 100-continue with a 413 that the client receives, whether it waits for the 100 or not', async () => {
    let reads = 0;
    const http = createHttpServer({
      logger,
      routes: {
        '/graphql': async (req, res) => {
          reads += 1;
          sendJson(res, 200, { body: await readJsonBody(req) });
        },
      },
    });
    const port = await http.listen('127.0.0.1', 0);
    /**
     * A request with `Expect: 100-continue`, over a raw socket: its body sent once the server
     * says 100 (`waits`), or with the headers without waiting (`eager`), as RFC 9110 allows.
     * Resolves with what the server said, and the socket's error if any (a write that failed:
     * the server closed before it had read the body).
     */
    const expecting = async (length: number, body: Buffer | undefined, eager = false) => {
      const socket = connect(port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      let text = '';
      let failed: string | undefined;
      const answered = () =>
        /\r\n\r\n\{.*\}$/.test(text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''));
      socket.on('error', (error: NodeJS.ErrnoException) => {
        failed ??= error.code ?? error.message;
      });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const send = (data: Buffer) => {
        for (let at = 0; at < data.length; at += 64 * 1024)
          socket.write(data.subarray(at, at + 64 * 1024));
      };
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        // Told to go on: a waiting client sends its body now.
        if (!eager && body && text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          send(body);
          body = undefined;
        }
        if (answered()) socket.end();
      });
      socket.write(
        `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`,
      );
      if (eager && body) send(body);
      await closed;
      return { text, failed };
    };
    try {
      // 5 MiB announced. Node says 100 at once (answering the 413 instead would close the
      // connection, and a client already sending would see a reset instead of the 413); the
      // 413 follows at once, and the body is read and thrown away.
      const big = Buffer.from(JSON.stringify({ query: 'x'.repeat(5 * 1024 * 1024) }));
      for (let round = 0; round < 3; round++) {
        const waiting = await expecting(big.length, big);
        expect(waiting.failed).toBeUndefined();
        expect(waiting.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 413 /);
        expect(waiting.text).toMatch(/\{"error":"request body too large"\}$/);
        // A client that sends the body without waiting can send all of it, and receives the 413.
        const eager = await expecting(big.length, big, true);
        expect(eager.failed).toBeUndefined();
        expect(eager.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 413 /);
        expect(eager.text).toMatch(/\{"error":"request body too large"\}$/);
      }
      // A small body is asked for (100), then read and answered.
      const small = Buffer.from('{"query":"{ a }"}');
      const asked = await expecting(small.length, small);
      expect(asked.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      expect(asked.text).toMatch(/\{"body":\{"query":"\{ a \}"\}\}$/);
      expect(reads).toBe(7);
    } finally {
      await http.close();
    }
  });

  it('takes a client that goes away mid-body as its own doing: no error logged, no crash', async () => {
    const logged: unknown[] = [];
    const watched = Object.create(logger, {
      error: { value: (...args: unknown[]) => logged.push(args) },
    }) as typeof logger;
    // How each request's body reading ended: 'read', or the status it was refused with.
    const outcomes: Promise<unknown>[] = [];
    let reached: () => void = () => undefined;
    const http = createHttpServer({
      logger: watched,
      routes: {
        '/graphql': async (req, res) => {
          const body = readJsonBody(req);
          outcomes.push(
            body.then(
              () => 'read',
              (error: { status?: number }) => error.status,
            ),
          );
          reached();
          sendJson(res, 200, { body: await body });
        },
      },
    });
    const port = await http.listen('127.0.0.1', 0);
    try {
      for (let round = 0; round < 5; round++) {
        const socket = connect(port, '127.0.0.1');
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        const reading = new Promise<void>((resolve) => (reached = resolve));
        socket.write(
          'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"query":',
        );
        // The server is reading the body (10 of its 1,000 bytes sent): the client goes away.
        await reading;
        socket.destroy();
      }
      const after = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":"{ a }"}',
      });
      expect(await after.json()).toEqual({ body: { query: '{ a }' } });
      // Every abandoned body settled, as the client's fault (400); none was left hanging.
      expect(await Promise.all(outcomes)).toEqual([400, 400, 400, 400, 400, 'read']);
      expect(logged).toEqual([]);
    } finally {
      await http.close();
    }
  });

  it('closes the socket of a client that sends its headers too slowly', async () => {
    const http = createHttpServer({ logger, routes: {}, headersTimeoutMs: 300 });
    const port = await http.listen('127.0.0.1', 0);
    try {
      const socket = connect(port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // Starts a request and never finishes its headers.
      socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\n');
      const started = Date.now();
      const reply = await new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.once('close', () => resolve(text));
      });
      expect(reply).toMatch(/^HTTP\/1\.1 408/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await http.close();
    }
  });
});
