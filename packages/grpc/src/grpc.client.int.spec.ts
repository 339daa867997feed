import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@platform/errors';
import { createLogger } from '@platform/logger';
import { userV1 } from '@platform/proto';
import { createGrpcClient, grpcTarget } from './grpc.client';
import { bindService, createGrpcServer, type GrpcServer } from './grpc.server';

const TOKEN = 'a-test-internal-token-of-at-least-32-chars';
const logger = createLogger({ name: 'grpc-balance-test', level: 'silent' });

/**
 * A TCP proxy to an instance; `close()` resets its connections and refuses new ones, as the
 * kernel does for a process killed with SIGKILL. (@platform/testing's own proxy is test-tier
 * code this runtime package does not depend on.)
 */
async function killableProxy(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.resetAndDestroy();
        server.close(() => resolve());
      }),
  };
}

/** Retries `check` until it passes or `timeoutMs` is over. */
async function eventually(check: () => Promise<void>, timeoutMs: number, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

/** The instance of every call that hangs now, by name. */
const hanging: string[] = [];

/** One instance of a user service that answers with its own name. */
async function instance(name: string): Promise<{ server: GrpcServer; port: number }> {
  const server = createGrpcServer({
    logger,
    internalToken: TOKEN,
    services: [
      bindService({
        name: 'user.v1.UserService',
        definition: userV1.UserServiceService,
        handlers: {
          getUser: async (request) => {
            // `hang`: the call stays in flight on this instance until it goes away.
            if (request.id === `hang-${name}`) {
              hanging.push(name);
              await new Promise(() => undefined);
            }
            return {
              user: {
                id: request.id,
                email: 'x@example.com',
                displayName: name,
                status: userV1.UserStatus.USER_STATUS_ACTIVE,
                emailVerified: false,
                createdAt: new Date(0),
                updatedAt: new Date(0),
              },
            };
          },
          createUser: () => Promise.reject(AppError.notFound('User')),
          batchGetUsers: async () => ({ users: [] }),
          getUserByEmail: () => Promise.reject(AppError.notFound('User')),
          deleteUser: async () => ({}),
          listUsers: async () => ({ users: [], cursors: [], hasNextPage: false, totalCount: 0 }),
          updateUser: () => Promise.reject(AppError.notFound('User')),
        },
      }),
    ],
  });
  return { server, port: await server.listen('127.0.0.1', 0) };
}

describe('gRPC clients over several instances', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers.toReversed()) await close().catch(() => undefined);
  });

  /** Two instances, `b` behind a proxy the test can take away as a killed process would. */
  let a: { server: GrpcServer; port: number };
  let b: { server: GrpcServer; port: number };
  let bProxy: { port: number; close(): Promise<void> };
  beforeAll(async () => {
    a = await instance('a');
    b = await instance('b');
    closers.push(
      () => a.server.close(100),
      () => b.server.close(100),
    );
    bProxy = await killableProxy(b.port);
    closers.push(() => bProxy.close());
  });

  function client(address: string) {
    const created = createGrpcClient(userV1.UserServiceService, {
      address,
      internalToken: TOKEN,
      defaultDeadlineMs: 2_000,
    });
    closers.push(async () => created.close());
    return created;
  }

  const answeredBy = async (users: ReturnType<typeof client>, id = 'u1') =>
    (await users.getUser({ id })).user?.displayName;

  it('turns a list of addresses into one balanced target, and leaves a DNS target alone', () => {
    expect(grpcTarget('127.0.0.1:1')).toBe('127.0.0.1:1');
    expect(grpcTarget('127.0.0.1:1,127.0.0.1:2')).toBe('ipv4:127.0.0.1:1,127.0.0.1:2');
    expect(grpcTarget('[::1]:1, [::1]:2')).toBe('ipv6:[::1]:1,[::1]:2');
    expect(grpcTarget('dns:///auth.platform.svc:50051')).toBe('dns:///auth.platform.svc:50051');
    expect(() => grpcTarget('auth-1:1,auth-2:1')).toThrow(/dns:\/\/\//);
  });

  it('spreads calls over every listed instance and moves to the survivor when one dies', async () => {
    const users = client(`127.0.0.1:${a.port},127.0.0.1:${bProxy.port}`);
    const seen = new Set<string | undefined>();
    await eventually(async () => {
      for (let call = 0; call < 10; call++) seen.add(await answeredBy(users));
      expect([...seen].sort()).toEqual(['a', 'b']);
    }, 5_000);

    // Calls in flight on b when it dies fail as an outage, not as an internal error.
    const inFlight = Array.from({ length: 6 }, () =>
      users.getUser({ id: 'hang-b' }).then(
        () => 'answered',
        (error: unknown) => error,
      ),
    );
    // Some landed on b and hang there (the others were answered by a).
    await eventually(async () => expect(hanging).toContain('b'), 5_000);
    const killedAt = Date.now();
    await bProxy.close(); // b's connections reset and its port refuses: a SIGKILLed process
    const outcomes = await Promise.all(inFlight);
    const failures = outcomes.filter((outcome) => outcome !== 'answered');
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures)
      expect(failure).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        retryAfter: expect.any(Number) as unknown,
      });

    // Within two seconds every new call goes to a, and succeeds.
    await eventually(
      async () => {
        for (let call = 0; call < 10; call++) expect(await answeredBy(users)).toBe('a');
      },
      2_000,
      50,
    );
    expect(Date.now() - killedAt).toBeLessThan(2_500);
  });

  it('keeps answering when one instance shuts down gracefully', async () => {
    const c = await instance('c');
    const d = await instance('d');
    const users = client(`127.0.0.1:${c.port},127.0.0.1:${d.port}`);
    await eventually(async () => {
      const seen = new Set<string | undefined>();
      for (let call = 0; call < 10; call++) seen.add(await answeredBy(users));
      expect(seen.size).toBe(2);
    }, 5_000);
    await c.server.close(1_000);
    for (let call = 0; call < 20; call++) expect(await answeredBy(users)).toBe('d');
    await d.server.close(100);
  });

  it('reaches the instances a DNS target names', async () => {
    const users = client(`dns:///localhost:${a.port}`);
    expect(await answeredBy(users)).toBe('a');
  });
});
