import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { AppError, toGraphQLError } from '@platform/errors';
import { OperationTypeNode } from 'graphql';

/**
 * The operation to run must be clear and servable over HTTP: a document with several
 * operations and no (or an unknown) `operationName`, or a subscription sent over HTTP, is
 * the client's fault (BAD_USER_INPUT, HTTP 400), not the gateway's executor failing (500).
 */
export function operationKindPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request }) {
          if (!operation) {
            const problem =
              request.operationName != null
                ? `names no operation of the document`
                : `is required when the document holds several operations`;
            throw toGraphQLError(AppError.badInput('operationName', problem), { status: 400 });
          }
          if (operation.operation === OperationTypeNode.SUBSCRIPTION)
            throw toGraphQLError(
              new AppError(
                'BAD_USER_INPUT',
                'Subscriptions are served over WebSocket (graphql-ws) on /graphql, not HTTP',
              ),
              { status: 400 },
            );
        },
      };
    },
  };
}
