import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { AppError } from './app-error';
import {
  formatGraphQLError,
  fromGrpcError,
  MAX_GRPC_MESSAGE_LENGTH,
  toGraphQLError,
  toGrpcError,
} from './translate';

function asServiceError(shape: ReturnType<typeof toGrpcError>): ServiceError {
  return Object.assign(new Error(`${shape.code} ${shape.details}`), shape);
}

describe('error translation', () => {
  it.each([
    ['BAD_USER_INPUT', status.INVALID_ARGUMENT],
    ['NOT_FOUND', status.NOT_FOUND],
    ['CONFLICT', status.ALREADY_EXISTS],
    ['UNAUTHENTICATED', status.UNAUTHENTICATED],
    ['FORBIDDEN', status.PERMISSION_DENIED],
    ['RATE_LIMITED', status.RESOURCE_EXHAUSTED],
    ['SERVICE_UNAVAILABLE', status.UNAVAILABLE],
  ] as const)('carries %s across gRPC to GraphQL', (code, grpcStatus) => {
    const wire = toGrpcError(
      new AppError(code, 'message for the user', { retryAfter: 7, field: 'email', reason: 'why' }),
    );
    expect(wire.code).toBe(grpcStatus);
    const graphqlError = toGraphQLError(fromGrpcError(asServiceError(wire)));
    expect(graphqlError.message).toBe('message for the user');
    expect(graphqlError.extensions).toEqual({ code, field: 'email', retryAfter: 7, reason: 'why' });
  });

  it('cuts a long message at a character, never inside a surrogate pair', () => {
    const message = `${'a'.repeat(MAX_GRPC_MESSAGE_LENGTH - 2)}😀${'b'.repeat(50)}`;
    const { details } = toGrpcError(new AppError('BAD_USER_INPUT', message));
    expect(details).toBe(`${'a'.repeat(MAX_GRPC_MESSAGE_LENGTH - 2)}…`);
    const short = 'x'.repeat(MAX_GRPC_MESSAGE_LENGTH);
    expect(toGrpcError(new AppError('BAD_USER_INPUT', short)).details).toBe(short);
  });

  it('masks unexpected errors on the way out of a service', () => {
    const wire = toGrpcError(new Error('relation "users"."users" does not exist'));
    expect(wire).toMatchObject({ code: status.INTERNAL, details: 'Internal server error' });
  });

  it.each([
    [status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:50051'],
    [status.DEADLINE_EXCEEDED, 'Deadline exceeded after 5.001s'],
  ])(
    'answers an unreachable service (%s) as SERVICE_UNAVAILABLE, naming nothing',
    (code, details) => {
      const failure = Object.assign(new Error(`${code} ${details}`), {
        code,
        details,
        metadata: new Metadata(),
      });
      const graphqlError = toGraphQLError(failure);
      expect(graphqlError.message).toBe('Service temporarily unavailable; try again shortly');
      expect(graphqlError.extensions).toEqual({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });
    },
  );

  it('shows what an AppError gives the caller to go on in extensions, never over its code', () => {
    const graphqlError = toGraphQLError(
      new AppError('UNAUTHENTICATED', 'needs a second factor', {
        reason: 'MFA_REQUIRED',
        details: { mfaChallenge: { challenge: 'c' }, code: 'FORBIDDEN' },
      }),
    );
    expect(graphqlError.extensions).toEqual({
      code: 'UNAUTHENTICATED',
      reason: 'MFA_REQUIRED',
      mfaChallenge: { challenge: 'c' },
    });
  });

  it('masks other transport failures as INTERNAL_SERVER_ERROR', () => {
    const failure = Object.assign(new Error('13 INTERNAL: Received RST_STREAM'), {
      code: status.INTERNAL,
      details: 'Received RST_STREAM with code 2',
      metadata: new Metadata(),
    });
    const graphqlError = toGraphQLError(failure);
    expect(graphqlError.message).toBe('Internal server error');
    expect(graphqlError.extensions['code']).toBe('INTERNAL_SERVER_ERROR');
  });

  it.each([
    [
      'a refused socket',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ],
    ['Redis gone', new Error('Connection is closed.')],
    [
      'Redis not writeable',
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    ],
    ['a Redis command timeout', new Error('Command timed out')],
    ['Redis out of memory', new Error("OOM command not allowed when used memory > 'maxmemory'.")],
    [
      'a Redis replica after a failover',
      new Error("READONLY You can't write against a read only replica."),
    ],
    ['Redis loading its data', new Error('LOADING Redis is loading the dataset in memory')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    [
      'a transaction that could not start in time',
      Object.assign(
        new Error('Transaction API error: Unable to start a transaction in the given time.'),
        {
          code: 'P2028',
        },
      ),
    ],
    [
      'PostgreSQL shutting down',
      Object.assign(new Error('terminating connection due to administrator command'), {
        code: '57P01',
      }),
    ],
    [
      'an unreachable database behind Prisma',
      new Error('query failed', { cause: { kind: 'DatabaseNotReachable' } }),
    ],
    [
      // What Prisma 7 throws for $queryRaw when the adapter cannot connect (seen in
      // prisma/src/outage.int.spec.ts): the adapter's error only in `meta`.
      'a raw query that cannot reach the database',
      Object.assign(new Error('Invalid `prisma.$queryRawUnsafe()` invocation: Raw query failed'), {
        code: 'P2010',
        meta: {
          driverAdapterError: {
            name: 'DriverAdapterError',
            cause: { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 },
          },
        },
      }),
    ],
    ['a statement on a connection that went silent', new Error('Query read timeout')],
    ['a pooled connection lost mid-query', new Error('Connection terminated unexpectedly')],
    [
      'a transaction on a connection that was lost',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
    [
      'a model query that cannot reach the database',
      Object.assign(new Error("Can't reach database server at 127.0.0.1:5432"), { code: 'P1001' }),
    ],
  ])(
    'answers %s in a service as SERVICE_UNAVAILABLE over gRPC, masking the message',
    (_what, error) => {
      const wire = toGrpcError(error);
      expect(wire.code).toBe(status.UNAVAILABLE);
      expect(wire.details).toBe('Service temporarily unavailable; try again shortly');
      const graphqlError = toGraphQLError(fromGrpcError(asServiceError(wire)));
      expect(graphqlError.extensions).toEqual({ code: 'SERVICE_UNAVAILABLE', retryAfter: 5 });
    },
  );

  it('keeps a plain bug INTERNAL_SERVER_ERROR', () => {
    expect(
      toGrpcError(new TypeError("Cannot read properties of undefined (reading 'id')")).code,
    ).toBe(status.INTERNAL);
  });

  it('keeps a raw query that failed for another reason INTERNAL_SERVER_ERROR', () => {
    const failure = Object.assign(new Error('Raw query failed. Code: `42P01`'), {
      code: 'P2010',
      meta: { code: '42P01', message: 'relation "nowhere" does not exist' },
    });
    expect(toGrpcError(failure).code).toBe(status.INTERNAL);
  });
});

describe('formatGraphQLError', () => {
  it('keeps the limit and the measured value of an operation refused as too complex', () => {
    const refused = new GraphQLError('Query depth is 14, above the limit of 12', {
      extensions: { code: 'QUERY_TOO_COMPLEX', reason: 'DEPTH', limit: 12, measured: 14 },
    });
    const formatted = formatGraphQLError(refused.toJSON(), refused, () => undefined);
    expect(formatted).toEqual({
      message: 'Query depth is 14, above the limit of 12',
      extensions: { code: 'QUERY_TOO_COMPLEX', reason: 'DEPTH', limit: 12, measured: 14 },
    });
  });

  it('answers Apollo Server refusing a request with a 4xx and no code as BAD_USER_INPUT, unlogged', () => {
    // What its persisted-query checks throw (an unsupported version, a hash not of the query).
    const refused = new GraphQLError('provided sha does not match query', {
      extensions: { http: { status: 400, headers: new Map() } },
    });
    const logged: unknown[] = [];
    // Apollo formats it with its default code, and without the HTTP part.
    const formatted = { message: refused.message, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
    expect(formatGraphQLError(formatted, refused, (error) => logged.push(error))).toEqual({
      message: 'provided sha does not match query',
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(logged).toEqual([]);
    // A server fault that set no status is still masked and logged.
    const fault = new GraphQLError('cannot read properties of undefined');
    const masked = { message: fault.message, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
    expect(formatGraphQLError(masked, fault, (error) => logged.push(error))).toEqual({
      message: 'Internal server error',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(logged).toEqual([fault]);
    // Nor does a 4xx status hide an error that says it is internal.
    const internal = new GraphQLError('database exploded', {
      extensions: { code: 'INTERNAL_SERVER_ERROR', http: { status: 400, headers: new Map() } },
    });
    expect(
      formatGraphQLError(
        { message: internal.message, extensions: { code: 'INTERNAL_SERVER_ERROR' } },
        internal,
        (error) => logged.push(error),
      ),
    ).toEqual({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(logged).toEqual([fault, internal]);
  });

  it('maps an undeclared invalid-argument status back to BAD_USER_INPUT, not QUERY_TOO_COMPLEX', () => {
    const wire = toGrpcError(AppError.badInput('first', 'must be between 1 and 100'));
    wire.metadata.remove('x-error-code');
    wire.metadata.set('x-error-code', 'SOMETHING_NEW');
    expect(fromGrpcError(asServiceError(wire)).code).toBe('BAD_USER_INPUT');
  });
});

describe('formatGraphQLError on an outage', () => {
  it('answers a driver error thrown in a resolver as SERVICE_UNAVAILABLE and logs the original', () => {
    const redisDown = new Error('Connection is closed.');
    const thrown = new GraphQLError('Connection is closed.', { originalError: redisDown });
    const logged: unknown[] = [];
    const formatted = formatGraphQLError(thrown.toJSON(), thrown, (error) => logged.push(error));
    expect(formatted).toEqual({
      message: 'Service temporarily unavailable; try again shortly',
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
    });
    expect(logged).toEqual([expect.objectContaining({ code: 'SERVICE_UNAVAILABLE' })]);
  });

  it('answers a subgraph instance that died mid-request as SERVICE_UNAVAILABLE at the gateway', () => {
    const socketClosed = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    const fetchFailed = new TypeError('fetch failed', { cause: socketClosed });
    const wrapped = new GraphQLError('Error while fetching subquery from service "users"', {
      originalError: fetchFailed,
    });
    expect(formatGraphQLError(wrapped.toJSON(), wrapped, () => undefined)).toEqual({
      message: 'Service temporarily unavailable; try again shortly',
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
    });
  });

  it('passes a subgraph SERVICE_UNAVAILABLE through the gateway with its retryAfter', () => {
    const fromSubgraph = new GraphQLError('Service temporarily unavailable; try again shortly', {
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5, serviceName: 'users' },
    });
    expect(formatGraphQLError(fromSubgraph.toJSON(), fromSubgraph, () => undefined)).toEqual({
      message: 'Service temporarily unavailable; try again shortly',
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
    });
  });
});
