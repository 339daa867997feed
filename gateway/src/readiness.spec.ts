import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpDependency } from './readiness';

async function listen(status: number): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(status).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const healthUrl = (server: Server) =>
  `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;

describe('readiness of a subgraph listed with several instances', () => {
  let healthy: Server;
  let failing: Server;
  // Nothing listens there: the connection is refused.
  const gone = 'http://127.0.0.1:1/health';

  beforeAll(async () => {
    [healthy, failing] = await Promise.all([listen(200), listen(503)]);
  });
  afterAll(() => {
    healthy.close();
    failing.close();
  });

  it('is up while one instance answers, whichever it is', async () => {
    await expect(httpDependency('users', [gone, healthyUrl()]).check()).resolves.toEqual({
      up: true,
    });
    await expect(
      httpDependency('users', [healthyUrl(), healthUrl(failing)]).check(),
    ).resolves.toEqual({ up: true });
  });

  it('is down when no instance answers 200', async () => {
    await expect(httpDependency('users', [gone, healthUrl(failing)]).check()).resolves.toEqual({
      up: false,
    });
  });

  function healthyUrl(): string {
    return healthUrl(healthy);
  }
});
