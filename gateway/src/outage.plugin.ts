import type { ApolloServerPlugin } from '@apollo/server';
import { OperationTypeNode, type GraphQLError } from 'graphql';
import {
  OUTAGE_RETRY_AFTER_SECONDS,
  outageAnswer,
  toAppError,
  toGraphQLError,
  type AppError,
} from '@platform/errors';

/**
 * SERVICE_UNAVAILABLE when `error` means a dependency is down (a Redis or database driver's
 * error, or an AppError saying so, as gRPC clients answer an unreachable service); undefined
 * otherwise.
 */
export function outageOf(error: unknown): AppError | undefined {
  const appError = toAppError(error);
  return appError.code === 'SERVICE_UNAVAILABLE' ? appError : undefined;
}

/** A request refused before planning because a dependency is down: HTTP 503 with Retry-After. */
export function unavailable(outage: AppError): GraphQLError {
  return toGraphQLError(outage, outageAnswer(outage.retryAfter));
}

/**
 * HTTP 503 with `Retry-After` for a response whose errors say SERVICE_UNAVAILABLE (a
 * subgraph or service could not reach its database or Redis, or could not be reached): the
 * status an HTTP client, proxy or load balancer retries on, instead of 200 (or 500 for a
 * request that failed whole). The body is unchanged: it may still carry the data that could
 * be answered. A client fault already answered (4xx) keeps its status; so do results sent in
 * several parts (their status left with the first). A mutation of which a root field was
 * answered keeps 200: that part took effect, and a client, proxy or retry link retrying a 503
 * would repeat it.
 */
export function outageStatusPlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, operation }) {
          if (response.body.kind !== 'single') return;
          const { data } = response.body.singleResult;
          if (
            operation?.operation === OperationTypeNode.MUTATION &&
            data &&
            Object.values(data).some((value) => value !== null)
          )
            return;
          const outages = (response.body.singleResult.errors ?? []).filter(
            (error) => error.extensions?.['code'] === 'SERVICE_UNAVAILABLE',
          );
          if (outages.length === 0) return;
          const status = response.http.status;
          if (status !== undefined && status !== 200 && status !== 500 && status !== 503) return;
          const retryAfter = Math.max(
            ...outages.map((error) => {
              const seconds = error.extensions?.['retryAfter'];
              return typeof seconds === 'number' ? seconds : OUTAGE_RETRY_AFTER_SECONDS;
            }),
          );
          response.http.status = 503;
          response.http.headers.set('retry-after', String(retryAfter));
        },
      };
    },
  };
}
