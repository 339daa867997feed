import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { createEvent } from '@platform/events';
import type { ConsumerOptions, MessageBroker } from '@platform/messaging';
import {
  DISABLED_LOCKOUT_CONSUMER,
  LOCKOUT_ALLOWANCE_MS,
  startAuthConsumers,
} from './auth.consumers';

/** The consumers the auth service starts, by queue, as a broker would run them. */
async function started(lockOut: (userId: string, before?: Date) => Promise<number>) {
  const consumers = new Map<string, ConsumerOptions>();
  const broker: Pick<MessageBroker, 'consume'> = {
    consume: async (options) => {
      consumers.set(options.queue, options as unknown as ConsumerOptions);
    },
  };
  const warn = vi.fn();
  await startAuthConsumers({
    broker,
    oneTimeTokens: { sendRequestedReset: async () => undefined },
    credentials: { lockOut },
    logger: { warn },
    queuePrefix: 'test',
  });
  const lockouts = consumers.get(`test.${DISABLED_LOCKOUT_CONSUMER}`)!;
  return { lockouts, warn };
}

describe('the disabled-account lock-out consumer', () => {
  it('locks a disabled account out of what was begun up to its allowance after the change, and ignores an enabled one', async () => {
    const lockOut = vi.fn(async () => 2);
    const { lockouts, warn } = await started(lockOut);
    expect(lockouts.events).toEqual(['user.status_changed']);
    const userId = randomUUID();

    const disabled = createEvent('user.status_changed', { userId, status: 'DISABLED' });
    await lockouts.handle(disabled);
    expect(lockOut).toHaveBeenCalledWith(
      userId,
      new Date(Date.parse(disabled.occurredAt) + LOCKOUT_ALLOWANCE_MS),
    );
    // It ended what the direct call had not: the operator hears of it.
    expect(warn).toHaveBeenCalledWith(
      { userId, ended: 2, eventId: disabled.id },
      expect.stringContaining('direct lock-out had not run'),
    );

    lockOut.mockClear();
    await lockouts.handle(createEvent('user.status_changed', { userId, status: 'ACTIVE' }));
    expect(lockOut).not.toHaveBeenCalled();
  });
});
