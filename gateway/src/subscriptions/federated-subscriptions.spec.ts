import { fileURLToPath } from 'node:url';
import { GraphQLError, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { loadSupergraphSdl } from '../supergraph.source';
import { createSupergraphPlanning } from '../execution/supergraph-planning';
import { createFederatedSubscriptions } from './federated-subscriptions';
import type { UpstreamSubscriptions } from './upstream';

const supergraphSdl = loadSupergraphSdl({
  configPath: fileURLToPath(new URL('../../../supergraph.yaml', import.meta.url)),
});

/** Federated subscriptions over the real supergraph, whose upstream subscribe fails with `message`. */
function federatedFailingUpstream(message: string) {
  const upstream: UpstreamSubscriptions = {
    subscribe: () => {
      throw new Error(message);
    },
    connections: () => 0,
    onDrop: () => undefined,
    close: async () => undefined,
  };
  return createFederatedSubscriptions({
    planning: createSupergraphPlanning(supergraphSdl),
    dataSources: new Map(),
    upstream,
    logger: createLogger({ name: 'federated-test', level: 'silent' }),
  });
}

describe('createFederatedSubscriptions', () => {
  it('answers a failure while a subscription is set up as that subscription’s error, not by throwing', async () => {
    const federated = federatedFailingUpstream('no URL for subgraph notifications');
    const document = parse('subscription { notificationAdded { id } }');
    const run = () =>
      federated.run({
        plan: federated.plan(document, undefined, {}),
        document,
        operationName: undefined,
        variables: {},
        context: { correlationId: 'test' },
      });
    // graphql-ws's subscribe: a throw here would close the client's whole connection.
    expect(run).not.toThrow();
    await expect(run().next()).rejects.toThrow('no URL for subgraph notifications');
  });

  it('refuses a null condition variable when the subscription is planned, not at every event', () => {
    const federated = federatedFailingUpstream('not reached');
    const document = parse(
      'subscription ($i: Boolean = true) { notificationAdded { id title @include(if: $i) } }',
    );
    for (const variables of [{ i: null }, { i: null, other: 1 }]) {
      let refusal: unknown;
      try {
        federated.plan(document, undefined, variables);
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(GraphQLError);
      expect((refusal as GraphQLError).message).toMatch(/Variable "\$i" .* must not be null/);
      expect((refusal as GraphQLError).extensions['code']).toBe('BAD_USER_INPUT');
    }
    // With a value, or none (its default), it is planned.
    expect(federated.plan(document, undefined, { i: false }).primary.serviceName).toBe(
      'notifications',
    );
    expect(federated.plan(document, undefined, {}).primary.serviceName).toBe('notifications');
  });
});
