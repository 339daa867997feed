import { consumerMetrics, DLQ_POLL_MS, type Outcome } from './messaging.metrics';
import { connect, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { DependencyUnavailableError, isAppError, isDependencyOutage } from '@platform/errors';
import { parseEvent, type EventEnvelope, type EventOf, type EventType } from '@platform/events';
import type { Logger } from '@platform/logger';
import { contextFromHeaders, inSpan, SpanKind, traceHeaders } from '@platform/telemetry';

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
  /** How long `close()` lets the messages being handled finish before closing anyway. */
  drainTimeoutMs?: number;
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
  /**
   * Whether a failure means a dependency is down for now (the database, another service)
   * rather than that this message cannot be handled. Such a message waits in the shortest
   * retry queue without using up an attempt, so an outage never dead-letters it (until it
   * has waited `maxOutageMs`). Default: `isOutageFailure`.
   */
  isOutage?: (error: unknown) => boolean;
  /**
   * How long one message may keep waiting out outages before its failures count as attempts
   * again (a fault that only looks like an outage must not loop forever). Default 1 hour.
   */
  maxOutageMs?: number;
  prefetch?: number;
  /**
   * A queue for this connection only (exclusive, deleted with it), for live fan-out to the
   * clients of one instance: give it a name unique to the instance. Nothing is retried or
   * dead-lettered; while disconnected, events are missed (clients catch up by querying).
   * After a reconnect the queue is declared and bound again, and `onRedeclared` is called.
   */
  ephemeral?: boolean;
  /**
   * For an `ephemeral` consumer: its queue had gone (the connection dropped, or its channel
   * closed) and has been declared again, so the events published in between were missed.
   * Called on every such redeclaration (not the first declaration), once the new queue is
   * bound (what is published from then on is kept for it) and before it is consumed (none
   * of that reaches `handle` before this returns): tell whoever relied on the live feed to
   * catch up. May be called again if the new connection fails before it is up.
   */
  onRedeclared?: () => void;
}

export interface MessageBroker {
  /**
   * Publishes an event and resolves once the broker has confirmed it. Rejects with a
   * `DependencyUnavailableError('rabbitmq')` while disconnected or when the confirm does not
   * come (the event may or may not have been delivered: publishers retry, consumers
   * deduplicate), with a plain Error when the broker refused (nacked) it.
   */
  publish(event: EventEnvelope): Promise<void>;
  /** Declares the consumer's topology and starts consuming; re-established after reconnects. */
  consume<T extends EventType>(options: ConsumerOptions<T>): Promise<void>;
  isConnected(): boolean;
  /**
   * Stops taking messages, lets the ones being handled finish (and be acked or retried), at
   * most `drainTimeoutMs`, then closes the connection.
   */
  close(): Promise<void>;
}

/**
 * The default `isOutage`: a dependency is unreachable (a refused or lost connection,
 * PostgreSQL or Prisma saying the database cannot be reached) or a service answered
 * SERVICE_UNAVAILABLE.
 */
export function isOutageFailure(error: unknown): boolean {
  return isDependencyOutage(error) || (isAppError(error) && error.code === 'SERVICE_UNAVAILABLE');
}

const ATTEMPT_HEADER = 'x-attempt';
/** When (epoch ms) a message first failed for an outage; kept across outage retries. */
const OUTAGE_SINCE_HEADER = 'x-outage-since';
const PUBLISH_TIMEOUT_MS = 5_000;
const DEFAULT_RETRY_DELAYS_MS = [1_000, 10_000, 60_000] as const;
/** The outage retry delay of a consumer that has no retry queues of its own. */
const DEFAULT_OUTAGE_DELAY_MS = 1_000;
const DEFAULT_MAX_OUTAGE_MS = 60 * 60 * 1_000;
/**
 * How long to wait before re-opening a consumer whose channel the broker closed: doubling
 * from the first to the last while the broker keeps refusing (a permanent channel error, such
 * as a queue declared elsewhere with other arguments, waits for an operator at this pace).
 */
const CONSUMER_RESTART_DELAY_MS = { first: 1_000, max: 60_000 };
/**
 * How long a failed message whose copy to a retry or dead-letter queue the broker refused
 * stays unacknowledged before it goes back to its queue, to be handled again.
 */
const PARK_REFUSED_REQUEUE_MS = 1_000;
const RABBITMQ = 'rabbitmq';

/** A consumer running on the current connection: its channel and consumer tag. */
interface ActiveConsumer {
  channel: ConfirmChannel;
  tag: string;
}

/**
 * A RabbitMQ connection that reconnects with back-off, publishes with confirms and runs
 * consumers that ack only after their work is done, retry with back-off through per-delay
 * retry queues, wait out dependency outages without using up attempts, and park poison
 * messages in a dead-letter queue.
 */
export async function createMessageBroker(options: MessageBrokerOptions): Promise<MessageBroker> {
  const { logger, exchange } = options;
  const delays = options.reconnectDelayMs ?? { initial: 200, max: 5_000 };
  const consumers: ConsumerOptions[] = [];
  let connection: ChannelModel | undefined;
  let publishChannel: ConfirmChannel | undefined;
  let active: ActiveConsumer[] = [];
  let closing = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let attempt = 0;
  let disconnectedAt: number | undefined;
  let firstConnection: { resolve: () => void; reject: (error: Error) => void } | undefined;
  // Messages whose handler is running: close() waits for them.
  let inFlight = 0;
  let idle: (() => void)[] = [];
  // Ephemeral consumers whose queue has been declared at least once.
  const declared = new WeakSet<ConsumerOptions>();

  /**
   * An ephemeral consumer's queue has just been declared and bound: if it had been declared
   * before, it was gone in between (with its connection or channel), and so are the events
   * published meanwhile. Called before the new queue is consumed.
   */
  function ephemeralDeclared(consumer: ConsumerOptions): void {
    if (!declared.has(consumer)) {
      declared.add(consumer);
      return;
    }
    logger.warn(
      { queue: consumer.queue },
      'live queue declared again; events published while it was gone were missed',
    );
    try {
      consumer.onRedeclared?.();
    } catch (error) {
      logger.error({ err: error, queue: consumer.queue }, 'onRedeclared failed');
    }
  }

  async function open(): Promise<void> {
    const url = new URL(options.url);
    // Heartbeats notice a dead peer that never closed the socket (a cut network).
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', '5');
    const model = await connect(url.toString(), { timeout: 5_000 });
    let lost = false;
    model.on('error', (error: Error) => logger.warn({ err: error }, 'rabbitmq connection error'));
    model.on('close', () => {
      lost = true;
      // A connection that never became the live one is open()'s to clean up.
      if (connection !== model) return;
      connection = undefined;
      publishChannel = undefined;
      active = [];
      if (!closing) {
        disconnectedAt = Date.now();
        logger.error('rabbitmq connection lost; reconnecting');
        scheduleReconnect();
      }
    });
    try {
      const channel = await openPublishChannel(model);
      const started: ActiveConsumer[] = [];
      for (const consumer of consumers) started.push(await startConsumer(model, consumer));
      if (lost) throw new Error('rabbitmq connection closed while opening');
      connection = model;
      publishChannel = channel;
      active = started;
    } catch (error) {
      // Half-opened (e.g. an exclusive queue still held by our previous, not yet dead,
      // connection): close it, or it would linger unused and hold its queues.
      await model.close().catch(() => undefined);
      throw error;
    }
  }

  async function openPublishChannel(model: ChannelModel): Promise<ConfirmChannel> {
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: Error) =>
      logger.warn({ err: error }, 'rabbitmq publish channel error'),
    );
    // The broker closed the channel alone (a channel-level error): open another on the
    // connection rather than failing every publish until the next reconnect.
    channel.on('close', () => {
      if (closing || connection !== model || publishChannel !== channel) return;
      publishChannel = undefined;
      // When the whole connection is going, its channels close first: let that settle.
      setTimeout(() => {
        if (closing || connection !== model) return;
        openPublishChannel(model).then(
          (reopened) => {
            if (connection === model) publishChannel = reopened;
          },
          (error: unknown) => logger.warn({ err: error }, 'could not reopen the publish channel'),
        );
      }, 100).unref();
    });
    await channel.assertExchange(exchange, 'topic', { durable: true });
    return channel;
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
            if (disconnectedAt !== undefined)
              logger.info({ outageMs: Date.now() - disconnectedAt }, 'rabbitmq reconnected');
            else if (attempt > 1) logger.info('rabbitmq connected');
            disconnectedAt = undefined;
            attempt = 0;
            firstConnection?.resolve();
            firstConnection = undefined;
          },
          (error: unknown) => {
            logger.debug({ err: error, attempt }, 'rabbitmq connect failed');
            scheduleReconnect();
          },
        );
      },
      attempt === 1 ? 0 : delay,
    );
  }

  /** The broker closed a consumer's channel while the connection lives: start it again. */
  function restartLater(
    model: ChannelModel,
    consumer: ConsumerOptions,
    stale: ActiveConsumer,
    failures = 0,
  ) {
    const delay = Math.min(
      CONSUMER_RESTART_DELAY_MS.first * 2 ** failures,
      CONSUMER_RESTART_DELAY_MS.max,
    );
    setTimeout(() => {
      if (closing || connection !== model) return; // the reconnect path starts it
      startConsumer(model, consumer).then(
        (restarted) => {
          if (connection !== model) return;
          active = [...active.filter((entry) => entry !== stale), restarted];
          logger.info({ queue: consumer.queue, failures }, 'consumer restarted');
        },
        (error: unknown) => {
          // Said at error level once; a refusal that lasts is retried ever more slowly.
          const log = { err: error, queue: consumer.queue, retryInMs: delay * 2 };
          if (failures === 0) logger.error(log, 'could not restart consumer; retrying');
          else logger.debug(log, 'could not restart consumer; retrying');
          restartLater(model, consumer, stale, failures + 1);
        },
      );
    }, delay).unref();
  }

  function track<T>(work: Promise<T>): Promise<T> {
    inFlight += 1;
    return work.finally(() => {
      inFlight -= 1;
      if (inFlight === 0) for (const resolve of idle.splice(0)) resolve();
    });
  }

  async function startConsumer(
    model: ChannelModel,
    consumer: ConsumerOptions,
  ): Promise<ActiveConsumer> {
    const retryDelays = consumer.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    const channel = await model.createConfirmChannel();
    const self: ActiveConsumer = { channel, tag: '' };
    channel.on('error', (error: Error) =>
      logger.warn({ err: error, queue: consumer.queue }, 'consumer channel error'),
    );
    channel.on('close', () => {
      if (!closing && connection === model && active.includes(self))
        restartLater(model, consumer, self);
    });
    await channel.prefetch(consumer.prefetch ?? 10);
    const expiry = options.queueExpiresMs ? { 'x-expires': options.queueExpiresMs } : {};
    if (consumer.ephemeral) {
      await channel.assertQueue(consumer.queue, {
        exclusive: true,
        autoDelete: true,
        durable: false,
      });
      for (const type of consumer.events) await channel.bindQueue(consumer.queue, exchange, type);
      ephemeralDeclared(consumer);
      const live = consumerMetrics(consumer.queue);
      const { consumerTag } = await channel.consume(consumer.queue, (message) => {
        // null: cancelled by the broker (its queue was deleted): the channel restart declares
        // it again (and reports the gap), as for a durable queue below.
        if (!message) {
          void channel.close().catch(() => undefined);
          return;
        }
        const started = performance.now();
        track(
          (async () => {
            let outcome: Outcome = 'ack';
            try {
              const event = parseEvent(JSON.parse(message.content.toString('utf8')));
              await handleInSpan(consumer, message, event);
            } catch (error) {
              logger.warn({ err: error, queue: consumer.queue }, 'live event dropped');
              outcome = 'dropped';
            }
            channel.ack(message);
            live.settled(started, outcome);
          })(),
        ).catch((error: unknown) => {
          // The channel closed meanwhile; its queue went with it.
          logger.debug({ err: error, queue: consumer.queue }, 'could not ack live event');
        });
      });
      self.tag = consumerTag;
      return self;
    }
    await channel.assertQueue(consumer.queue, { durable: true, arguments: expiry });
    for (const type of consumer.events) await channel.bindQueue(consumer.queue, exchange, type);
    const deadLetterQueue = `${consumer.queue}.dlq`;
    await channel.assertQueue(deadLetterQueue, { durable: true, arguments: expiry });
    const metrics = consumerMetrics(consumer.queue);
    // The dead-letter queue's depth (queue_dead_letter_messages), counted now and every 15 s.
    const countDeadLetters = () =>
      channel.checkQueue(deadLetterQueue).then(
        ({ messageCount }) => metrics.deadLetterDepth(messageCount),
        () => undefined,
      );
    void countDeadLetters();
    const deadLetterPoll = setInterval(() => void countDeadLetters(), DLQ_POLL_MS);
    deadLetterPoll.unref();
    channel.on('close', () => clearInterval(deadLetterPoll));
    // An outage retry waits in the shortest retry queue (one is declared if there is none).
    const outageDelay = retryDelays.length > 0 ? Math.min(...retryDelays) : DEFAULT_OUTAGE_DELAY_MS;
    const isOutage = consumer.isOutage ?? isOutageFailure;
    const maxOutageMs = consumer.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS;
    // One retry queue per delay: messages wait out the TTL, then dead-letter back to the queue.
    for (const delay of new Set([...retryDelays, outageDelay])) {
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
    // When this consumer's current outage began (undefined: none): logged once, not per message.
    let outageSince: number | undefined;

    async function park(message: ConsumeMessage, queue: string, headers: Record<string, unknown>) {
      channel.sendToQueue(queue, message.content, {
        ...message.properties,
        persistent: true,
        headers: { ...message.properties.headers, ...headers },
      });
      await channel.waitForConfirms();
    }

    /**
     * Parks a message (see park); resolves false when the copy was not confirmed. The channel
     * still lives then (the broker refused the copy: a full queue, a resource alarm), so the
     * message goes back to its queue a little later, to be handled again, rather than stay
     * unacknowledged for as long as the channel lives. When the channel died, the broker
     * redelivers it by itself.
     */
    async function parked(
      message: ConsumeMessage,
      queue: string,
      headers: Record<string, unknown>,
    ): Promise<boolean> {
      try {
        await park(message, queue, headers);
        return true;
      } catch (error) {
        logger.error(
          { err: error, queue: consumer.queue, to: queue, retryInMs: PARK_REFUSED_REQUEUE_MS },
          'the broker did not take a failed message to its next queue; it will be handled again',
        );
        setTimeout(() => {
          try {
            channel.nack(message, false, true);
          } catch {
            // The channel closed meanwhile: the broker redelivers the message on its own.
          }
        }, PARK_REFUSED_REQUEUE_MS).unref();
        return false;
      }
    }

    async function onMessage(message: ConsumeMessage): Promise<void> {
      const started = performance.now();
      const attemptNo = Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 0);
      let event: EventEnvelope;
      try {
        event = parseEvent(JSON.parse(message.content.toString('utf8')));
      } catch (error) {
        logger.error({ err: error, queue: consumer.queue }, 'malformed message; dead-lettered');
        if (!(await parked(message, deadLetterQueue, { 'x-error': 'malformed message' }))) {
          metrics.settled(started, 'requeued');
          return;
        }
        channel.ack(message);
        metrics.settled(started, 'dead_letter');
        return;
      }
      let failure: { error: unknown } | undefined;
      try {
        await handleInSpan(consumer, message, event);
      } catch (error) {
        failure = { error };
      }
      const outcome: Outcome = failure
        ? await settleFailure(message, event, attemptNo, failure.error)
        : 'ack';
      if (!failure) channel.ack(message);
      metrics.settled(started, outcome);
      if (!failure && outageSince !== undefined) {
        logger.info(
          { queue: consumer.queue, outageMs: Date.now() - outageSince },
          'consumer recovered from a dependency outage',
        );
        outageSince = undefined;
      }
    }

    /**
     * Copies a failed message to a retry queue or the DLQ (with confirm), then acks it; a
     * refused copy puts it back in its queue instead (see parked).
     */
    async function settleFailure(
      message: ConsumeMessage,
      event: EventEnvelope,
      attemptNo: number,
      error: unknown,
    ): Promise<Outcome> {
      let outcome: Outcome;
      let parkedTo: boolean;
      const log = {
        err: error,
        queue: consumer.queue,
        eventId: event.id,
        type: event.type,
        attempt: attemptNo + 1,
      };
      const firstOutage = Number(message.properties.headers?.[OUTAGE_SINCE_HEADER] ?? Date.now());
      if (isOutage(error) && Date.now() - firstOutage < maxOutageMs) {
        if (outageSince === undefined) {
          outageSince = Date.now();
          logger.warn(
            { ...log, retryInMs: outageDelay },
            'a dependency is unavailable; events wait for it without using up attempts',
          );
        }
        // The attempt count stays as it was: the outage is not this message's fault.
        outcome = 'outage_retry';
        parkedTo = await parked(message, `${consumer.queue}.retry.${outageDelay}ms`, {
          [OUTAGE_SINCE_HEADER]: firstOutage,
        });
      } else {
        const nextDelay = retryDelays[attemptNo];
        if (nextDelay === undefined) {
          logger.error(log, 'event failed on every attempt; dead-lettered');
          outcome = 'dead_letter';
          parkedTo = await parked(message, deadLetterQueue, {
            [ATTEMPT_HEADER]: attemptNo + 1,
            'x-error': error instanceof Error ? error.message.slice(0, 500) : 'unknown error',
          });
        } else {
          logger.warn({ ...log, retryInMs: nextDelay }, 'event handling failed; will retry');
          outcome = 'retry';
          parkedTo = await parked(message, `${consumer.queue}.retry.${nextDelay}ms`, {
            [ATTEMPT_HEADER]: attemptNo + 1,
          });
        }
      }
      if (!parkedTo) return 'requeued';
      // Only after the copy is confirmed: a crash before this line redelivers the original.
      channel.ack(message);
      return outcome;
    }

    const { consumerTag } = await channel.consume(consumer.queue, (message) => {
      // null: cancelled by the broker (its queue was deleted); the channel restart or the
      // reconnect path re-creates it.
      if (!message) {
        void channel.close().catch(() => undefined);
        return;
      }
      track(onMessage(message)).catch((error: unknown) => {
        // The channel died mid-way; unacked messages go back to the queue on their own.
        logger.warn({ err: error, queue: consumer.queue }, 'could not settle message');
      });
    });
    self.tag = consumerTag;
    return self;
  }

  /**
   * Runs a consumer's handler in a CONSUMER span, a child of the span that published the
   * message (its `traceparent` header): the work an event causes joins the trace of the
   * operation that caused the event. Retries keep the header, so they join it too.
   */
  function handleInSpan(
    consumer: ConsumerOptions,
    message: ConsumeMessage,
    event: EventEnvelope,
  ): Promise<void> {
    return inSpan(
      `${consumer.queue} process`,
      {
        kind: SpanKind.CONSUMER,
        parent: contextFromHeaders(message.properties.headers),
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': exchange,
          'messaging.rabbitmq.destination.routing_key': event.type,
          'messaging.message.id': event.id,
          'messaging.consumer.group.name': consumer.queue,
        },
      },
      // parseEvent checked the payload against the contract of `event.type`.
      () => consumer.handle(event as EventOf<EventType>),
    );
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
      if (!channel) throw new DependencyUnavailableError(RABBITMQ);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new DependencyUnavailableError(RABBITMQ, {
                cause: new Error('publish not confirmed in time'),
              }),
            ),
          PUBLISH_TIMEOUT_MS,
        );
        try {
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
              // The publishing span (the outbox relay's), for the consumers' spans.
              headers: traceHeaders(),
            },
            (error) => {
              clearTimeout(timer);
              if (!error) resolve();
              // A nack is the broker's answer; anything else is the channel going away.
              else if (error instanceof Error && !/nack/i.test(error.message))
                reject(new DependencyUnavailableError(RABBITMQ, { cause: error }));
              else reject(new Error('message nacked by broker', { cause: error }));
            },
          );
        } catch (error) {
          // The channel closed under us (amqplib throws synchronously then).
          clearTimeout(timer);
          reject(new DependencyUnavailableError(RABBITMQ, { cause: error }));
        }
      });
    },
    async consume(consumer) {
      const options = consumer as unknown as ConsumerOptions;
      consumers.push(options);
      const model = connection;
      if (model) active.push(await startConsumer(model, options));
    },
    isConnected: () => connection !== undefined,
    async close() {
      closing = true;
      clearTimeout(reconnectTimer);
      const model = connection;
      // Take no more deliveries; what is unacked but not yet handled goes back to the queue.
      await Promise.allSettled(active.map(({ channel, tag }) => channel.cancel(tag)));
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => idle.push(resolve)),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, options.drainTimeoutMs ?? 10_000);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        idle = [];
      }
      await model?.close().catch(() => undefined);
      connection = undefined;
      publishChannel = undefined;
      active = [];
    },
  };
}
