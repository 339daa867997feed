import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { parse, type DocumentNode } from 'graphql';
import type { Logger } from '@platform/logger';
import type { EarlyRefusal } from './operation-limits.plugin';
import {
  excessFragments,
  excessNesting,
  queryTooComplex,
  type LimitExceeded,
} from './operation-cost';

/**
 * What Apollo validates in place of a document refused before validation: it fails at once
 * (no such field), and the refusal replaces that answer.
 */
const REFUSED = parse('{ __refused }');

/**
 * The NESTING limit each parsed document's text exceeds (null: none); Apollo hands the same
 * document to every request with that text.
 */
const excessOf = new WeakMap<DocumentNode, LimitExceeded | null>();

/**
 * A document with more than MAX_FRAGMENT_SPREADS fragment spreads is refused with
 * QUERY_TOO_COMPLEX (reason FRAGMENTS, HTTP 400) before it is validated. A text not parsed
 * before that `beforeParsing` refuses (the caller's budget: see `newDocumentCharge`) is answered
 * with that refusal's code and HTTP answer whatever its parse gives, and is not validated (its
 * parse, bounded by the token limit, cannot be stopped from a hook). A text whose brackets
 * nest deeper than MAX_TEXT_NESTING is refused with QUERY_TOO_COMPLEX
 * (reason NESTING, the limit and the measured nesting, HTTP 400), before planning: nested inline
 * fragments add no field, so no other limit stops them, and the planner recurses as deep. A text
 * nested so deep that graphql-js's recursive parser ran out of stack gets the same answer
 * instead of the parser's "Maximum call stack size exceeded": Apollo Server answers an error
 * thrown by a hook before parsing with a 500, so that refusal replaces the parse failure's
 * answer. List this plugin first, so that the metrics and the log see the code it answers.
 */
export function textNestingPlugin<TContext extends BaseContext>(
  logger: Logger,
  options: {
    /** A text about to be parsed (a cache miss): the refusal, or undefined to go on. */
    beforeParsing?: (context: TContext, source: string) => Promise<EarlyRefusal | undefined>;
  } = {},
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      let refusal: EarlyRefusal | undefined;
      return {
        // Only for a text not parsed before (a document cache miss): charged first, whether
        // it parses or not; the nesting is measured once the parse was tried.
        async parsingDidStart({ source, contextValue }) {
          refusal = await options.beforeParsing?.(contextValue, source);
          return async (error) => {
            if (refusal || !(error instanceof RangeError)) return;
            const exceeded = excessNesting(source);
            if (!exceeded) return;
            logger.info(exceeded, 'operation refused: too complex');
            refusal = { error: queryTooComplex(exceeded, false) };
          };
        },
        // Only for a document not validated before (a cache miss): one with more fragment
        // spreads than MAX_FRAGMENT_SPREADS is not validated at all (Apollo Server answers an
        // error thrown here with a 500: Apollo validates the stand-in instead, and the refusal
        // replaces its answer).
        async validationDidStart(requestContext) {
          if (!refusal) {
            const exceeded = excessFragments(requestContext.document);
            if (!exceeded) return;
            logger.info(exceeded, 'operation refused: too complex');
            refusal = { error: queryTooComplex(exceeded, false) };
          }
          // Apollo validates `requestContext.document` as this hook returns (typed read-only
          // for plugins; the limits e2e test fails should that change).
          (requestContext as { document: DocumentNode }).document = REFUSED;
        },
        async didResolveOperation({ document, source }) {
          let exceeded = excessOf.get(document);
          if (exceeded === undefined) {
            exceeded = excessNesting(source) ?? null;
            excessOf.set(document, exceeded);
          }
          if (!exceeded) return;
          logger.info(exceeded, 'operation refused: too complex');
          throw queryTooComplex(exceeded);
        },
        async willSendResponse({ response }) {
          if (!refusal || response.body.kind !== 'single') return;
          const { error, http } = refusal;
          response.body.singleResult = { errors: [error.toJSON()] };
          response.http.status = http?.status ?? 400;
          for (const [name, value] of http?.headers ?? []) response.http.headers.set(name, value);
        },
      };
    },
  };
}
