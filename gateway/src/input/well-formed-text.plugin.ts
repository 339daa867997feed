import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { AppError, toGraphQLError } from '@platform/errors';
import { findIllFormedText } from '@platform/validation';

/**
 * Refuses, before planning, an operation whose text or variables hold a NUL character or an
 * unpaired surrogate: no field accepts them, and PostgreSQL would fail on them deep inside a
 * service. BAD_USER_INPUT naming where, HTTP 400.
 */
export function wellFormedTextPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request }) {
          const where =
            findIllFormedText(request.variables ?? {}) ??
            (findIllFormedText(request.query ?? '') ? 'query' : undefined);
          if (!where) return;
          throw toGraphQLError(
            AppError.badInput(where, 'must not contain NUL characters or unpaired surrogates'),
            { status: 400 },
          );
        },
      };
    },
  };
}
