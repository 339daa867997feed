import { ApolloServer } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { registry } from '@platform/metrics';
import { graphqlMetricsPlugin } from './metrics.plugin';

async function value(name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  const { values } = (await metric?.get()) ?? { values: [] };
  return values
    .filter((sample) => Object.entries(labels).every(([k, v]) => sample.labels[k] === v))
    .reduce((sum, sample) => sum + sample.value, 0);
}

describe('graphqlMetricsPlugin', () => {
  const server = new ApolloServer({
    typeDefs: 'type Query { ok: Int, fails: Int }',
    resolvers: {
      Query: {
        ok: () => 1,
        fails: () => {
          throw new GraphQLError('no', { extensions: { code: 'FORBIDDEN' } });
        },
      },
    },
    plugins: [graphqlMetricsPlugin({ maxOperationNames: 2 })],
  });

  it('counts operations by name and type, errors by code, and bounds the names', async () => {
    await server.start();
    try {
      for (const query of [
        'query A { ok }',
        'query B { fails }',
        'query C { ok }',
        '{ ok }',
        'query { nope }',
        'query A { ok }',
      ])
        await server.executeOperation({ query });
      const count = (operation: string) =>
        value('graphql_operations_total', { operation, type: 'query' });
      expect(await count('A')).toBe(2);
      expect(await count('B')).toBe(1);
      // Past two distinct names, new ones are `other`.
      expect(await count('C')).toBe(0);
      expect(await count('other')).toBe(1);
      expect(await count('anonymous')).toBe(1);
      // A document that does not validate has no operation.
      expect(
        await value('graphql_operations_total', { operation: 'unknown', type: 'unknown' }),
      ).toBe(1);
      expect(
        await value('graphql_operation_errors_total', { operation: 'B', code: 'FORBIDDEN' }),
      ).toBe(1);
      expect(
        await value('graphql_operation_errors_total', {
          operation: 'unknown',
          code: 'GRAPHQL_VALIDATION_FAILED',
        }),
      ).toBe(1);
      expect(await value('graphql_operation_duration_seconds', { operation: 'A' })).toBeGreaterThan(
        0,
      );
    } finally {
      await server.stop();
    }
  });
});
