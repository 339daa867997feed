import { connect as connectAmqp, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { createLogger } from '@platform/logger';
import { createTestRun, eventually, type TestRun } from '@platform/testing';
import { createMessageBroker, type MessageBroker } from './message-broker';

const logger = createLogger({ name: 'messaging-test', level: 'silent' });
const QUEUE_EXPIRES_MS = 60_000;

describe('a consumer whose failed message the broker will not take to its next queue', () => {
  let run: TestRun;
  let broker: MessageBroker;
  let admin: ChannelModel;

  beforeAll(async () => {
    run = await createTestRun();
    broker = await createMessageBroker({
      url: run.rabbitmqUrl,
      exchange: run.exchange,
      logger,
      reconnectDelayMs: { initial: 50, max: 300 },
      queueExpiresMs: QUEUE_EXPIRES_MS,
    });
    admin = await connectAmqp(run.rabbitmqUrl);
  });

  afterAll(async () => {
    await broker.close();
    await admin.close();
    await run.close();
  });

  it('keeps the message, handles it again, and dead-letters it once the broker takes it', async () => {
    const queue = `${run.exchange}.poison`;
    const deadLetters = `${queue}.dlq`;
    let handled = 0;
    await broker.consume({
      queue,
      events: ['user.registered'],
      retryDelaysMs: [], // the first failure dead-letters
      handle: () => {
        handled += 1;
        return Promise.reject(new Error('this event always fails'));
      },
    });
    // The dead-letter queue refuses every message (full at length 0): the broker nacks the copy.
    const channel = await admin.createChannel();
    await channel.deleteQueue(deadLetters);
    await channel.assertQueue(deadLetters, {
      durable: true,
      arguments: {
        'x-expires': QUEUE_EXPIRES_MS,
        'x-max-length': 0,
        'x-overflow': 'reject-publish',
      },
    });

    await broker.publish(
      createEvent('user.registered', {
        userId: '00000000-0000-4000-8000-000000000001',
        email: 'poison@example.com',
        displayName: 'Poison',
      }),
    );
    // Handled, refused by the dead-letter queue, back in its queue and handled again.
    await eventually(() => expect(handled).toBeGreaterThanOrEqual(2), 10_000);

    // The dead-letter queue takes messages again: the event lands there, once, and nowhere else.
    await channel.deleteQueue(deadLetters);
    await channel.assertQueue(deadLetters, {
      durable: true,
      arguments: { 'x-expires': QUEUE_EXPIRES_MS },
    });
    await eventually(
      async () => expect((await channel.checkQueue(deadLetters)).messageCount).toBe(1),
      10_000,
    );
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    const parked = await channel.get(deadLetters);
    expect(parked && JSON.parse(parked.content.toString())).toMatchObject({
      type: 'user.registered',
      payload: { email: 'poison@example.com' },
    });
    await channel.close();
  });
});
