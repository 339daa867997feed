import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import { AppError, outageAnswer, toAppError, toGraphQLError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import {
  checkOperation,
  queryTooComplex,
  type OperationCost,
  type OperationLimits,
} from './operation-cost';
import type { BudgetDecision, RequestBudget } from './request-budget';

/** Who pays for an operation: the verified user, else the client's address. */
export interface Caller {
  /** The verified caller's id; undefined when anonymous. */
  userId?: string | undefined;
  clientAddress?: string | undefined;
}

/** What an operation costs from its caller's budget: a point per root field and per object. */
export function budgetPoints(cost: OperationCost): number {
  return Math.max(1, cost.rootFields + cost.nodes);
}

/** The budget key of a caller. */
export function callerKey(caller: Caller): string {
  return caller.userId ? `user:${caller.userId}` : `address:${caller.clientAddress ?? 'unknown'}`;
}

/** RATE_LIMITED with `retryAfter`, answered with HTTP 429 and a Retry-After header. */
export function budgetExhausted(retryAfter: number): GraphQLError {
  return toGraphQLError(
    new AppError('RATE_LIMITED', 'Request budget used up; try again later', { retryAfter }),
    { status: 429, headers: new Map([['retry-after', String(retryAfter)]]) },
  );
}

/**
 * Holds every operation to the limits before it is planned: one that exceeds a limit is
 * refused with QUERY_TOO_COMPLEX (HTTP 400), one whose caller has used up their budget with
 * RATE_LIMITED (HTTP 429), and one whose budget cannot be charged (Redis down) with
 * SERVICE_UNAVAILABLE (HTTP 503 and Retry-After). In each case no subgraph is called.
 */
export function operationLimitsPlugin<TContext extends Caller>(options: {
  limits: OperationLimits;
  budget: RequestBudget;
  logger: Logger;
}): ApolloServerPlugin<TContext> {
  const { limits, budget, logger } = options;
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          if (!operation) return;
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
          let decision: BudgetDecision;
          try {
            decision = await budget.charge(callerKey(contextValue), budgetPoints(cost));
          } catch (error) {
            const refusal = toAppError(error);
            if (refusal.code !== 'SERVICE_UNAVAILABLE') throw error;
            throw toGraphQLError(refusal, outageAnswer(refusal.retryAfter));
          }
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
