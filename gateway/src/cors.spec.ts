import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, sendJson, type HttpServer } from '@platform/http-server';
import { createLogger } from '@platform/logger';
import { withCors } from './cors';

describe(withCors.name, () => {
  let http: HttpServer;
  let url: string;
  const allowed = { any: true, origins: new Set<string>() };

  beforeAll(async () => {
    http = createHttpServer({
      logger: createLogger({ name: 'cors-test', level: 'silent' }),
      routes: { '/graphql': withCors((_req, res) => sendJson(res, 200, { ok: true }), allowed) },
    });
    url = `http://127.0.0.1:${await http.listen('127.0.0.1', 0)}/graphql`;
  });

  afterAll(() => http.close());

  it('lets through the headers Apollo Client, urql and tracing send', async () => {
    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    const headers = preflight.headers.get('access-control-allow-headers')!.split(', ');
    expect(headers).toEqual(
      expect.arrayContaining([
        'authorization',
        'content-type',
        'apollographql-client-name',
        'apollographql-client-version',
        'traceparent',
        'tracestate',
      ]),
    );
  });

  it('lets a browser read the correlation id of a response', async () => {
    const response = await fetch(url, { headers: { origin: 'https://app.example' } });
    expect(response.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(response.headers.get('access-control-expose-headers')).toBe('x-correlation-id');
  });

  it('never allows the opaque null origin with credentials, even in development', async () => {
    const response = await fetch(url, { headers: { origin: 'null' } });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
