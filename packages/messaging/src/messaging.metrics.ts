import { counter, gauge, histogram } from '@platform/metrics';

/** How a consumed message was settled (`dropped`: a live, ephemeral queue's failed handling). */
export type Outcome = 'ack' | 'retry' | 'outage_retry' | 'dead_letter' | 'dropped' | 'requeued';

const handled = counter({
  name: 'messages_handled_total',
  help: 'Messages a consumer settled, by queue and outcome (ack, retry, outage_retry, dead_letter, dropped).',
  labelNames: ['queue', 'outcome'] as const,
});
const seconds = histogram({
  name: 'message_processing_duration_seconds',
  help: 'Time from a message reaching its consumer to it being settled, in seconds, by queue.',
  labelNames: ['queue'] as const,
});
const deadLetters = gauge({
  name: 'queue_dead_letter_messages',
  help: "Messages waiting in a queue's dead-letter queue (<queue>.dlq), polled every 15 s.",
  labelNames: ['queue'] as const,
});

/** How often dead-letter queues are counted. */
export const DLQ_POLL_MS = 15_000;

const INSTANCE_SUFFIX = /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One queue's metrics, label children bound once. An ephemeral queue named per instance
 * (`....live.<uuid>`) is labelled without its instance part (`....live.*`).
 */
export function consumerMetrics(name: string) {
  const queue = name.replace(INSTANCE_SUFFIX, '.*');
  const duration = seconds.labels(queue);
  const outcomes = {
    ack: handled.labels(queue, 'ack'),
    retry: handled.labels(queue, 'retry'),
    outage_retry: handled.labels(queue, 'outage_retry'),
    dead_letter: handled.labels(queue, 'dead_letter'),
    dropped: handled.labels(queue, 'dropped'),
    requeued: handled.labels(queue, 'requeued'),
  } satisfies Record<Outcome, unknown>;
  const depth = deadLetters.labels(queue);
  return {
    settled(started: number, outcome: Outcome): void {
      outcomes[outcome].inc();
      duration.observe((performance.now() - started) / 1000);
    },
    deadLetterDepth: (count: number) => depth.set(count),
  };
}
