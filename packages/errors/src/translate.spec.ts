import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { AppError } from './app-error';
import { formatGraphQLError, fromGrpcError, toGraphQLError, toGrpcError } from './translate';

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
  ] as const)('carries %s across gRPC to GraphQL', (code, grpcStatus) => {
    const wire = toGrpcError(
      new AppError(code, 'message for the user', { retryAfter: 7, field: 'email', reason: 'why' }),
    );
    expect(wire.code).toBe(grpcStatus);
    const graphqlError = toGraphQLError(fromGrpcError(asServiceError(wire)));
    expect(graphqlError.message).toBe('message for the user');
    expect(graphqlError.extensions).toEqual({ code, field: 'email', retryAfter: 7, reason: 'why' });
  });

  it('masks unexpected errors on the way out of a service', () => {
    const wire = toGrpcError(new Error('relation "users"."users" does not exist'));
    expect(wire).toMatchObject({ code: status.INTERNAL, details: 'Internal server error' });
  });

  it('masks transport failures as INTERNAL_SERVER_ERROR', () => {
    const unavailable = Object.assign(
      new Error('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:50051'),
      {
        code: status.UNAVAILABLE,
        details: 'connect ECONNREFUSED 127.0.0.1:50051',
        metadata: new Metadata(),
      },
    );
    const graphqlError = toGraphQLError(unavailable);
    expect(graphqlError.message).toBe('Internal server error');
    expect(graphqlError.extensions['code']).toBe('INTERNAL_SERVER_ERROR');
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

  it('maps an undeclared invalid-argument status back to BAD_USER_INPUT, not QUERY_TOO_COMPLEX', () => {
    const wire = toGrpcError(AppError.badInput('first', 'must be between 1 and 100'));
    wire.metadata.remove('x-error-code');
    wire.metadata.set('x-error-code', 'SOMETHING_NEW');
    expect(fromGrpcError(asServiceError(wire)).code).toBe('BAD_USER_INPUT');
  });
});
