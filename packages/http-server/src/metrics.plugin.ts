import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { boundedLabel, counter, histogram, secondsSince } from '@platform/metrics';

const operations = counter({
  name: 'graphql_operations_total',
  help: 'GraphQL operations answered (over HTTP, and subscriptions started over WebSocket), by operation name and type.',
  labelNames: ['operation', 'type'] as const,
});
const errors = counter({
  name: 'graphql_operation_errors_total',
  help: 'Errors in GraphQL responses, by operation name, type and error code (extensions.code).',
  labelNames: ['operation', 'type', 'code'] as const,
});
const duration = histogram({
  name: 'graphql_operation_duration_seconds',
  help: 'Time from a GraphQL request reaching Apollo Server to its response, in seconds.',
  labelNames: ['operation', 'type'] as const,
});

/** Distinct operation names kept as labels per process; later new names count as `other`. */
export const MAX_OPERATION_NAMES = 200;

/** Error codes are a closed set (docs/errors.md); anything else is reported as `other`. */
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * RED metrics per GraphQL operation: how many, how many errors by code and how long. The
 * operation name is the one the document resolved to (`anonymous` without one; `unknown` when
 * the document did not parse or validate), at most `maxOperationNames` distinct names.
 */
export function graphqlMetricsPlugin<TContext extends BaseContext>(
  options: { maxOperationNames?: number } = {},
): ApolloServerPlugin<TContext> {
  const operationLabel = boundedLabel({ max: options.maxOperationNames ?? MAX_OPERATION_NAMES });
  // Pre-bound children per (name, type): the hot path does one map lookup.
  const children = new Map<
    string,
    { count: { inc(): void }; seconds: { observe(v: number): void } }
  >();
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ operationName, operation, response }) {
          const type = operation?.operation ?? 'unknown';
          const name = operation ? operationLabel(operationName) : 'unknown';
          const key = `${type}:${name}`;
          let child = children.get(key);
          if (!child) {
            child = {
              count: operations.labels(name, type),
              seconds: duration.labels(name, type),
            };
            children.set(key, child);
          }
          child.count.inc();
          child.seconds.observe(secondsSince(started));
          const body = response.body;
          const list = body.kind === 'single' ? body.singleResult.errors : undefined;
          if (!list) return;
          for (const error of list) {
            const code = error.extensions?.['code'];
            errors.inc({
              operation: name,
              type,
              code: typeof code === 'string' && CODE.test(code) ? code : 'other',
            });
          }
        },
      };
    },
  };
}

const webSocketOperationLabel = boundedLabel({ max: MAX_OPERATION_NAMES });

/**
 * Counts an operation that does not go through Apollo Server: a subscription started over
 * WebSocket, once, when its subscribe message is answered (`type` subscription; a refused one
 * with its errors' codes). `started` is `performance.now()` when the message arrived.
 */
export function recordWebSocketOperation(options: {
  operationName: string | null | undefined;
  /** `subscription`, or `unknown` when the document did not parse or validate. */
  type: string;
  started: number;
  errorCodes?: readonly unknown[];
}): void {
  const type = options.type;
  const name = type === 'unknown' ? 'unknown' : webSocketOperationLabel(options.operationName);
  operations.inc({ operation: name, type });
  duration.observe({ operation: name, type }, secondsSince(options.started));
  for (const code of options.errorCodes ?? [])
    errors.inc({
      operation: name,
      type,
      code: typeof code === 'string' && CODE.test(code) ? code : 'other',
    });
}
