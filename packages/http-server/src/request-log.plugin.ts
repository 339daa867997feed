import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { Logger } from '@platform/logger';

/**
 * One log line per GraphQL operation: name, type, duration and the error codes it returned.
 * It runs inside the request context, so the line carries the correlation id.
 */
export function requestLogPlugin<TContext extends BaseContext>(
  logger: Logger,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      // Below the log level (`warn` under load tests): nothing to time, nothing to build.
      if (!logger.isLevelEnabled('info')) return;
      const started = performance.now();
      return {
        async willSendResponse({ operationName, operation, response }) {
          // The errors as the client sees them (after formatError), so the codes are public ones.
          const errors =
            response.body.kind === 'single' ? response.body.singleResult.errors : undefined;
          logger.info(
            {
              operation: operationName ?? undefined,
              type: operation?.operation,
              ms: Math.round(performance.now() - started),
              ...(errors?.length
                ? { errors: errors.map((error) => error.extensions?.['code']) }
                : {}),
            },
            'graphql request',
          );
        },
      };
    },
  };
}
