import { connect, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { parseEvent, type EventEnvelope, type EventOf, type EventType } from '@platform/events';
import type { Logger } from '@platform/logger';

export interface MessageBrokerOptions {
  url: string;
  /** The durable topic exchange; routing key = event type. */
  exchange: string;
  logger: Logger;
  /** Reconnect back-off bounds. */
  reconnectDelayMs?: { initial: number; max: number };
  /** How long `createMessageBroker` waits for the first connection. */
  connectTimeoutMs?: number;
  /**
   * Queues this process declares are deleted by the broker after being unused this long.
   * For throw-away environments (test runs); unset in real deployments.
   */
  queueExpiresMs?: number | undefined;
}

export interface ConsumerOptions<T extends EventType = EventType> {
  /** Durable queue name, unique per consuming service and purpose. */
  queue: string;
  /** Event types (routing keys) this queue receives. */
  events: readonly T[];
  /**
   * Does the work; resolving acks the message. Must be idempotent (the broker delivers at
   * least once): record the event id in the same transaction as the effect.
   */
  handle: (event: EventOf<T>) => Promise<void>;
  /** Delay before each retry of a failed message; after the last, it goes to `<queue>.dlq`. */
  retryDelaysMs?: readonly number[];
  prefetch?: number;
  /**
   * A queue for this connection only (exclusive, deleted with it), for live fan-out to the
   * clients of one instance: give it a name unique to the instance. Nothing is retried or
   * dead-lettered; while disconnected, events are missed (clients catch up by querying).
   */
  ephemeral?: boolean;
}

export interface MessageBroker {
  /** Publishes an event and resolves once the broker has confirmed it; rejects otherwise. */
  publish(event: EventEnvelope): Promise<void>;
  /** Declares the consumer's topology and starts consuming; re-established after reconnects. */
  consume<T extends EventType>(options: ConsumerOptions<T>): Promise<void>;
  isConnected(): boolean;
  close(): Promise<void>;
}

const ATTEMPT_HEADER = 'x-attempt';
const PUBLISH_TIMEOUT_MS = 5_000;
const DEFAULT_RETRY_DELAYS_MS = [1_000, 10_000, 60_000] as const;

class NotConnectedError extends Error {
  constructor() {
    super('message broker is not connected');
  }
}

/**
 * A RabbitMQ connection that reconnects with back-off, publishes with confirms and runs
 * consumers that ack only after their work is done, retry with back-off through per-delay
 * retry queues, and park poison messages in a dead-letter queue.
 */
export async function createMessageBroker(options: MessageBrokerOptions): Promise<MessageBroker> {
  const { logger, exchange } = options;
  const delays = options.reconnectDelayMs ?? { initial: 200, max: 5_000 };
  const consumers: ConsumerOptions[] = [];
  let connection: ChannelModel | undefined;
  let publishChannel: ConfirmChannel | undefined;
  let closing = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let attempt = 0;
  let firstConnection: { resolve: () => void; reject: (error: Error) => void } | undefined;

  async function open(): Promise<void> {
    const url = new URL(options.url);
    // Heartbeats notice a dead peer that never closed the socket (a cut network).
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', '5');
    const model = await connect(url.toString(), { timeout: 5_000 });
    model.on('error', (error: Error) => logger.warn({ err: error }, 'rabbitmq connection error'));
    model.on('close', () => {
      connection = undefined;
      publishChannel = undefined;
      if (!closing) {
        logger.error('rabbitmq connection lost; reconnecting');
        scheduleReconnect();
      }
    });
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: Error) =>
      logger.warn({ err: error }, 'rabbitmq publish channel error'),
    );
    await channel.assertExchange(exchange, 'topic', { durable: true });
    connection = model;
    publishChannel = channel;
    for (const consumer of consumers) await startConsumer(model, consumer);
  }

  function scheduleReconnect(): void {
    if (closing || reconnectTimer) return;
    const delay = Math.min(delays.initial * 2 ** attempt, delays.max);
    attempt += 1;
    reconnectTimer = setTimeout(
      () => {
        reconnectTimer = undefined;
        open().then(
          () => {
            if (attempt > 1 || !firstConnection) logger.info('rabbitmq connected');
            attempt = 0;
            firstConnection?.resolve();
            firstConnection = undefined;
          },
          (error: unknown) => {
            logger.debug({ err: error, attempt }, 'rabbitmq connect failed');
            void connection?.close().catch(() => undefined);
            scheduleReconnect();
          },
        );
      },
      attempt === 1 ? 0 : delay,
    );
  }

  async function startConsumer(model: ChannelModel, consumer: ConsumerOptions): Promise<void> {
    const retryDelays = consumer.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: Error) =>
      logger.warn({ err: error, queue: consumer.queue }, 'consumer channel error'),
    );
    await channel.prefetch(consumer.prefetch ?? 10);
    const expiry = options.queueExpiresMs ? { 'x-expires': options.queueExpiresMs } : {};
    if (consumer.ephemeral) {
      await channel.assertQueue(consumer.queue, {
        exclusive: true,
        autoDelete: true,
        durable: false,
      });
      for (const type of consumer.events) await channel.bindQueue(consumer.queue, exchange, type);
      await channel.consume(consumer.queue, (message) => {
        if (!message) return;
        (async () => {
          try {
            const event = parseEvent(JSON.parse(message.content.toString('utf8')));
            await consumer.handle(event as EventOf<EventType>);
          } catch (error) {
            logger.warn({ err: error, queue: consumer.queue }, 'live event dropped');
          }
          channel.ack(message);
        })().catch((error: unknown) => {
          // The channel closed meanwhile; its queue went with it.
          logger.debug({ err: error, queue: consumer.queue }, 'could not ack live event');
        });
      });
      return;
    }
    await channel.assertQueue(consumer.queue, { durable: true, arguments: expiry });
    for (const type of consumer.events) await channel.bindQueue(consumer.queue, exchange, type);
    const deadLetterQueue = `${consumer.queue}.dlq`;
    await channel.assertQueue(deadLetterQueue, { durable: true, arguments: expiry });
    // One retry queue per delay: messages wait out the TTL, then dead-letter back to the queue.
    for (const delay of retryDelays) {
      await channel.assertQueue(`${consumer.queue}.retry.${delay}ms`, {
        durable: true,
        arguments: {
          ...expiry,
          'x-message-ttl': delay,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': consumer.queue,
        },
      });
    }

    async function park(message: ConsumeMessage, queue: string, headers: Record<string, unknown>) {
      channel.sendToQueue(queue, message.content, {
        ...message.properties,
        persistent: true,
        headers: { ...message.properties.headers, ...headers },
      });
      await channel.waitForConfirms();
    }

    async function onMessage(message: ConsumeMessage | null): Promise<void> {
      if (!message) return; // consumer cancelled by the broker; the reconnect path re-creates it
      const attemptNo = Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 0);
      let event: EventEnvelope;
      try {
        event = parseEvent(JSON.parse(message.content.toString('utf8')));
      } catch (error) {
        logger.error({ err: error, queue: consumer.queue }, 'malformed message; dead-lettered');
        await park(message, deadLetterQueue, { 'x-error': 'malformed message' });
        channel.ack(message);
        return;
      }
      try {
        // parseEvent checked the payload against the contract of `event.type`.
        await consumer.handle(event as EventOf<EventType>);
        channel.ack(message);
      } catch (error) {
        const nextDelay = retryDelays[attemptNo];
        const log = {
          err: error,
          queue: consumer.queue,
          eventId: event.id,
          type: event.type,
          attempt: attemptNo + 1,
        };
        if (nextDelay === undefined) {
          logger.error(log, 'event failed on every attempt; dead-lettered');
          await park(message, deadLetterQueue, {
            [ATTEMPT_HEADER]: attemptNo + 1,
            'x-error': error instanceof Error ? error.message.slice(0, 500) : 'unknown error',
          });
        } else {
          logger.warn({ ...log, retryInMs: nextDelay }, 'event handling failed; will retry');
          await park(message, `${consumer.queue}.retry.${nextDelay}ms`, {
            [ATTEMPT_HEADER]: attemptNo + 1,
          });
        }
        // Only after the copy is confirmed: a crash before this line redelivers the original.
        channel.ack(message);
      }
    }

    await channel.consume(consumer.queue, (message) => {
      onMessage(message).catch((error: unknown) => {
        // The channel died mid-way; unacked messages go back to the queue on their own.
        logger.warn({ err: error, queue: consumer.queue }, 'could not settle message');
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      closing = true;
      clearTimeout(reconnectTimer);
      reject(new Error(`RabbitMQ is unreachable at ${new URL(options.url).host}`));
    }, options.connectTimeoutMs ?? 10_000);
    firstConnection = {
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
      reject,
    };
    scheduleReconnect();
  });

  return {
    async publish(event) {
      const channel = publishChannel;
      if (!channel) throw new NotConnectedError();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('publish not confirmed in time')),
          PUBLISH_TIMEOUT_MS,
        );
        channel.publish(
          exchange,
          event.type,
          Buffer.from(JSON.stringify(event)),
          {
            persistent: true,
            contentType: 'application/json',
            messageId: event.id,
            type: event.type,
            timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
          },
          (error) => {
            clearTimeout(timer);
            if (error)
              reject(error instanceof Error ? error : new Error('message nacked by broker'));
            else resolve();
          },
        );
      });
    },
    async consume(consumer) {
      consumers.push(consumer as unknown as ConsumerOptions);
      if (connection) await startConsumer(connection, consumer as unknown as ConsumerOptions);
    },
    isConnected: () => connection !== undefined,
    async close() {
      closing = true;
      clearTimeout(reconnectTimer);
      await connection?.close().catch(() => undefined);
      connection = undefined;
    },
  };
}
