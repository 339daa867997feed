import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { Logger } from '@platform/logger';
import { MAX_TEXT_NESTING, queryTooComplex, textNesting } from './operation-cost';

/**
 * A text nested so deep that graphql-js's recursive parser ran out of stack is the client's
 * doing: answered QUERY_TOO_COMPLEX (reason NESTING, the limit and the measured nesting, HTTP
 * 400) instead of the parser's "Maximum call stack size exceeded". Apollo Server answers an
 * error thrown by a hook before parsing with a 500, so the refusal replaces the parse failure's
 * answer; list this plugin first, so that the metrics and the log see the code it answers.
 */
export function textNestingPlugin<TContext extends BaseContext>(
  logger: Logger,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      let refusal: ReturnType<typeof queryTooComplex> | undefined;
      return {
        // Only for a text not parsed before (a document cache miss), once it was tried.
        async parsingDidStart({ source }) {
          return async (error) => {
            if (!(error instanceof RangeError)) return;
            const measured = textNesting(source);
            if (measured <= MAX_TEXT_NESTING) return;
            const exceeded = { reason: 'NESTING', limit: MAX_TEXT_NESTING, measured } as const;
            logger.info(exceeded, 'operation refused: too complex');
            refusal = queryTooComplex(exceeded, false);
          };
        },
        async willSendResponse({ response }) {
          if (!refusal || response.body.kind !== 'single') return;
          const { message, extensions } = refusal.toJSON();
          response.body.singleResult = { errors: [{ message, extensions }] };
          response.http.status = 400;
        },
      };
    },
  };
}
