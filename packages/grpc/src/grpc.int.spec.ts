import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@platform/errors';
import { createLogger, runWithContext } from '@platform/logger';
import { registry } from '@platform/metrics';
import { userV1 } from '@platform/proto';
import { createGrpcClient } from './grpc.client';
import { checkGrpcHealth } from './grpc.health';
import { bindService, createGrpcServer, type GrpcServer } from './grpc.server';

const TOKEN = 'a-test-internal-token-of-at-least-32-chars';
const logger = createLogger({ name: 'grpc-test', level: 'silent' });

const user = (displayName: string): userV1.User => ({
  id: 'u1',
  email: 'u1@example.com',
  displayName,
  status: userV1.UserStatus.USER_STATUS_ACTIVE,
  emailVerified: false,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

describe('gRPC server and client', () => {
  let server: GrpcServer;
  let address: string;
  // The server side of every `slow` call, which ends after its client gave up.
  const slowCalls: Promise<void>[] = [];
  /** Resolves once every slow call has ended on the server and been counted. */
  const slowCallsEnded = async () => {
    await Promise.all(slowCalls);
    await new Promise((resolve) => setImmediate(resolve));
  };

  beforeAll(async () => {
    server = createGrpcServer({
      logger,
      internalToken: TOKEN,
      services: [
        bindService({
          name: 'user.v1.UserService',
          definition: userV1.UserServiceService,
          handlers: {
            // Echoes what the caller's metadata carried, so the test can see it arrive.
            createUser: async (_request, context) => ({
              user: user(`${context.userId}|${context.correlationId}`),
            }),
            getUser: async (request) => {
              if (request.id === 'missing') throw AppError.notFound('User');
              if (request.id === 'slow') {
                const slow = new Promise<void>((resolve) => setTimeout(resolve, 500));
                slowCalls.push(slow);
                await slow;
              }
              // A domain error whose message repeats a long input, as validation messages do.
              if (request.id.startsWith('long:'))
                throw AppError.badInput('id', `"${request.id}" is not a user id`);
              if (request.id === 'broken')
                throw new Error('connection to db://admin:secret@db failed');
              return { user: user('found') };
            },
            batchGetUsers: async () => ({ users: [] }),
            getUserByEmail: async () => Promise.reject(AppError.notFound('User')),
            deleteUser: async () => ({}),
            listUsers: async () => ({ users: [], cursors: [], hasNextPage: false, totalCount: 0 }),
            updateUser: async () => Promise.reject(AppError.notFound('User')),
          },
        }),
      ],
    });
    address = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
  });

  afterAll(() => server.close(1_000));

  const client = (internalToken = TOKEN) =>
    createGrpcClient(userV1.UserServiceService, {
      address,
      internalToken,
      defaultDeadlineMs: 2_000,
    });

  it('refuses a call without the internal credential', async () => {
    await expect(client('not-the-token').getUser({ id: 'u1' })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  it('answers a call with the credential, carrying the caller identity and correlation id', async () => {
    const response = await runWithContext(
      { correlationId: 'corr-0123456789', userId: 'user-42' },
      () => client().createUser({ email: 'x@example.com', displayName: 'X' }),
    );
    expect(response.user?.displayName).toBe('user-42|corr-0123456789');
  });

  it('turns a domain error into the same error on the calling side', async () => {
    await expect(client().getUser({ id: 'missing' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'User not found',
    });
  });

  it('answers a domain error repeating a long input at once, and the connection keeps serving', async () => {
    const caller = client();
    // grpc-js carries the message in an HTTP/2 trailer: one this long would break the
    // connection, and every call on it would wait for its deadline.
    for (const input of ['a'.repeat(200_000), '€'.repeat(20_000)]) {
      const started = Date.now();
      const error = await caller.getUser({ id: `long:${input}` }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
      expect((error as Error).message.length).toBeLessThanOrEqual(1_024);
      expect(Date.now() - started).toBeLessThan(1_500);
      expect((await caller.getUser({ id: 'u1' })).user?.displayName).toBe('found');
    }
  });

  it('masks unexpected errors so nothing internal leaks', async () => {
    const error = await client()
      .getUser({ id: 'broken' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'Internal server error',
    });
    expect(JSON.stringify(error)).not.toContain('secret');
  });

  it('gives up at the deadline, answering SERVICE_UNAVAILABLE (retryable)', async () => {
    const started = Date.now();
    await expect(client().getUser({ id: 'slow' }, { deadlineMs: 100 })).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      retryAfter: 5,
    });
    expect(Date.now() - started).toBeLessThan(400);
  });

  it('counts and times every call on both sides by service, method and status code', async () => {
    const count = async (name: string, labels: Record<string, string>) => {
      const { values } = (await registry.getSingleMetric(name)?.get()) ?? { values: [] };
      return values
        .filter((sample) => Object.entries(labels).every(([k, v]) => sample.labels[k] === v))
        .reduce((sum, sample) => sum + sample.value, 0);
    };
    const method = { grpc_service: 'user.v1.UserService', grpc_method: 'GetUser' };
    const codes = ['OK', 'NOT_FOUND', 'UNAUTHENTICATED', 'INTERNAL', 'DEADLINE_EXCEEDED'];
    // The slow call of the test before ends on the server only now.
    await slowCallsEnded();
    const before = await Promise.all(
      codes.flatMap((grpc_code) => [
        count('grpc_server_handled_total', { ...method, grpc_code }),
        count('grpc_client_handled_total', { ...method, grpc_code }),
      ]),
    );
    await client().getUser({ id: 'u1' });
    await client()
      .getUser({ id: 'missing' })
      .catch(() => undefined);
    await client('not-the-token')
      .getUser({ id: 'u1' })
      .catch(() => undefined);
    await client()
      .getUser({ id: 'broken' })
      .catch(() => undefined);
    await client()
      .getUser({ id: 'slow' }, { deadlineMs: 50 })
      .catch(() => undefined);
    // The slow call's server side ends after the client gave up.
    await slowCallsEnded();
    const after = await Promise.all(
      codes.flatMap((grpc_code) => [
        count('grpc_server_handled_total', { ...method, grpc_code }),
        count('grpc_client_handled_total', { ...method, grpc_code }),
      ]),
    );
    const moved = codes.flatMap((code, n) => [
      [`server ${code}`, after[2 * n]! - before[2 * n]!],
      [`client ${code}`, after[2 * n + 1]! - before[2 * n + 1]!],
    ]);
    expect(Object.fromEntries(moved)).toEqual({
      'server OK': 2, // the slow call succeeds on the server, late
      'client OK': 1,
      'server NOT_FOUND': 1,
      'client NOT_FOUND': 1,
      'server UNAUTHENTICATED': 1,
      'client UNAUTHENTICATED': 1,
      'server INTERNAL': 1,
      'client INTERNAL': 1,
      'server DEADLINE_EXCEEDED': 0,
      'client DEADLINE_EXCEEDED': 1,
    });
    expect(await count('grpc_server_handling_seconds', method)).toBeGreaterThan(0);
    expect(await count('grpc_client_handling_seconds', method)).toBeGreaterThan(0);
  });

  it('reports SERVING through the standard health service, without the credential', async () => {
    await expect(checkGrpcHealth(address)).resolves.toBe(true);
    await expect(checkGrpcHealth('127.0.0.1:1')).resolves.toBe(false);
  });
});
