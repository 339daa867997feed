import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import type { ConsumerOptions, MessageBroker } from '@platform/messaging';
import { startPermissionConsumers } from './permission.consumers';

const USER = '00000000-0000-4000-8000-000000000001';

/** A broker that hands each consumer's handler to the test. */
function capturingBroker() {
  const consumers: ConsumerOptions[] = [];
  const broker: MessageBroker = {
    async publish() {},
    async consume(options) {
      // Kept untyped: each test finds the consumer of the event type it feeds.
      consumers.push(options as unknown as ConsumerOptions);
    },
    isConnected: () => true,
    async close() {},
  };
  return { broker, consumers };
}

describe('the auth.mfa_changed consumer', () => {
  it('takes the event only as a signal: what it claims is never passed on', async () => {
    const { broker, consumers } = capturingBroker();
    const recorded: unknown[][] = [];
    await startPermissionConsumers({
      broker,
      assignments: { removeDeletedUser: async () => true },
      mfa: {
        record: async (...args) => {
          recorded.push(args);
          return true;
        },
      },
      queuePrefix: 'test',
    });
    const consumer = consumers.find((candidate) => candidate.events.includes('auth.mfa_changed'));
    // What anyone holding the broker's credential could publish.
    const forged = createEvent('auth.mfa_changed', {
      userId: USER,
      change: 'totp_enabled',
      mfaEnrolled: true,
      stateVersion: 2 ** 31 - 1,
    });
    await consumer?.handle(forged);
    expect(recorded).toEqual([[USER, 'permission.mfa-changed', forged.id]]);
  });

  it('fails the delivery (retried) while the auth service cannot answer', async () => {
    const { broker, consumers } = capturingBroker();
    await startPermissionConsumers({
      broker,
      assignments: { removeDeletedUser: async () => true },
      mfa: {
        record: async () => {
          throw new Error('auth service unreachable');
        },
      },
      queuePrefix: 'test',
    });
    const consumer = consumers.find((candidate) => candidate.events.includes('auth.mfa_changed'));
    const event = createEvent('auth.mfa_changed', { userId: USER, change: 'totp_disabled' });
    await expect(consumer?.handle(event)).rejects.toThrow('auth service unreachable');
  });
});
