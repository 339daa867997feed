import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import {
  AppError,
  outageAnswer,
  toAppError,
  toGraphQLError,
  type HttpAnswer,
} from '@platform/errors';
import type { Logger } from '@platform/logger';
import { sessionRefusal } from '@platform/tokens';
import { settleRefusedToken, type TokenCheck } from '../access/public-operations';
import {
  checkOperation,
  queryTooComplex,
  type OperationCost,
  type OperationLimits,
} from './operation-cost';
import type { Admission, BudgetCaller, RequestBudget } from './request-budget';

/**
 * Who sends an operation: an address, and maybe a token. `session` is the identity of a
 * genuine token (signature and claims checked), its session not yet; `userId` is set once the
 * session was found live and the token unexpired, before anything runs.
 */
export interface Caller extends BudgetCaller, TokenCheck {
  /** The verified caller's id; undefined when anonymous (or the token was refused). */
  userId?: string | undefined;
}

/** What an operation costs from its caller's budget: a point per root field and per object. */
export function budgetPoints(cost: OperationCost): number {
  return Math.max(1, cost.rootFields + cost.nodes);
}

/**
 * Characters of a document's text that cost a point to validate, charged once per text a
 * gateway instance has not validated before (see `newDocumentCharge`): about what validating
 * the worst text the limits admit costs against what an operation's points buy.
 */
export const NEW_DOCUMENT_CHARS_PER_POINT = 32;

/** What validating a text not seen before costs from its caller's budget. */
export function newDocumentPoints(source: string): number {
  return Math.max(1, Math.ceil(source.length / NEW_DOCUMENT_CHARS_PER_POINT));
}

/** A request refused before its text is validated: the error, and how HTTP answers it. */
export interface EarlyRefusal {
  error: GraphQLError;
  http?: HttpAnswer | undefined;
}

/**
 * Charges a text this instance has not validated before (a document-cache miss) to its
 * caller's budget, before it is parsed: a caller who sends new texts, valid or not, pays for
 * their parsing and validation, so a stream of distinct invalid documents (never charged as
 * operations, since they never become one) is throttled like any other work. Resolves to the refusal when
 * the budget is used up (RATE_LIMITED, 429) or Redis cannot answer (SERVICE_UNAVAILABLE, 503);
 * to undefined when charged. Over HTTP (textNestingPlugin) and WebSocket (subscribe messages).
 */
export function newDocumentCharge(
  budget: RequestBudget,
  logger: Logger,
): (caller: BudgetCaller, source: string) => Promise<EarlyRefusal | undefined> {
  return async (caller, source) => {
    const charged = await chargeOrOutage(budget, caller, newDocumentPoints(source));
    if ('outage' in charged) {
      const { outage } = charged;
      return { error: toGraphQLError(outage), http: outageAnswer(outage.retryAfter) };
    }
    const { decision } = charged.admission;
    if (decision.allowed) return undefined;
    logger.info(
      { retryAfter: decision.retryAfter },
      'new document refused before validation: request budget used up',
    );
    const { retryAfter } = decision;
    return { error: toGraphQLError(budgetUsedUp(retryAfter)), http: budgetAnswer(retryAfter) };
  };
}

/**
 * Charges `points` to the caller's budget; when Redis cannot answer, the outage to refuse the
 * request with (SERVICE_UNAVAILABLE, answered 503 with Retry-After) instead.
 */
async function chargeOrOutage(
  budget: RequestBudget,
  caller: BudgetCaller,
  points: number,
): Promise<{ admission: Admission } | { outage: AppError }> {
  try {
    return { admission: await budget.charge(caller, points) };
  } catch (error) {
    const refusal = toAppError(error);
    if (refusal.code !== 'SERVICE_UNAVAILABLE') throw error;
    return { outage: refusal };
  }
}

const budgetUsedUp = (retryAfter: number) =>
  new AppError('RATE_LIMITED', 'Request budget used up; try again later', { retryAfter });

/** HTTP 429 with Retry-After: how a caller whose budget is used up is answered. */
function budgetAnswer(retryAfter: number): HttpAnswer {
  return { status: 429, headers: new Map([['retry-after', String(retryAfter)]]) };
}

/** RATE_LIMITED with `retryAfter`, answered with HTTP 429 and a Retry-After header. */
export function budgetExhausted(retryAfter: number): GraphQLError {
  return toGraphQLError(budgetUsedUp(retryAfter), budgetAnswer(retryAfter));
}

/**
 * Admits every operation before it is planned, in this order:
 * 1. the limits: one that exceeds a limit is refused with QUERY_TOO_COMPLEX (HTTP 400);
 * 2. the token's session and the caller's budget, in one Redis round trip (see
 *    RequestBudget); when Redis cannot answer, SERVICE_UNAVAILABLE (HTTP 503, Retry-After);
 * 3. the token: refused, expired, of an ended session, or not checkable: a public operation
 *    goes on anonymously, any other is refused (settleRefusedToken: 401 or 503);
 * 4. the budget: a caller who used it up is refused with RATE_LIMITED (HTTP 429).
 * In each case of refusal no subgraph is called.
 */
export function operationLimitsPlugin<TContext extends Caller>(options: {
  limits: OperationLimits;
  budget: RequestBudget;
  /** Root fields that work without a valid token (publicRootFields). */
  publicFields: ReadonlySet<string>;
  logger: Logger;
}): ApolloServerPlugin<TContext> {
  const { limits, budget, publicFields, logger } = options;
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          // No operation to run (Apollo answers the error): nothing is forwarded on its behalf.
          if (!operation) {
            contextValue.authorization = undefined;
            return;
          }
          const { cost, exceeded } = checkOperation(
            schema,
            document,
            operation,
            request.variables,
            limits,
          );
          if (exceeded) {
            logger.info({ ...exceeded, cost }, 'operation refused: too complex');
            throw queryTooComplex(exceeded);
          }
          const charged = await chargeOrOutage(budget, contextValue, budgetPoints(cost));
          if ('outage' in charged) {
            const { outage } = charged;
            throw toGraphQLError(outage, outageAnswer(outage.retryAfter));
          }
          const { admission } = charged;
          const { session } = contextValue;
          if (session && admission.sessionUnchecked)
            contextValue.tokenUnchecked = admission.sessionUnchecked;
          else if (session) {
            const { sessionEnded, checkedAt } = admission;
            contextValue.tokenRefusal = sessionRefusal(session, sessionEnded, checkedAt);
            if (!contextValue.tokenRefusal) contextValue.userId = session.userId;
          }
          settleRefusedToken(contextValue, operation, document, publicFields);
          const { decision } = admission;
          if (!decision.allowed) {
            logger.info(
              { userId: contextValue.userId, retryAfter: decision.retryAfter },
              'operation refused: request budget used up',
            );
            throw budgetExhausted(decision.retryAfter);
          }
        },
      };
    },
  };
}
