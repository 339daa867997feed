import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createHttpServer, sendJson } from './http-server';

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
});
