import { BoundedMap } from '@platform/collections';
import type { EventEnvelope } from '@platform/events';
import type { notificationV1 } from '@platform/proto';
import { carryTraceContext } from '@platform/telemetry';
import type { LiveHub } from './live-hub';

/**
 * How many notification.created events an instance remembers having pushed: duplicates come
 * from the outbox publishing again a batch whose confirmation it lost (every few seconds until
 * the broker answers), so minutes' worth at hundreds a second; about 10 MiB when full.
 */
export const REMEMBERED_EVENTS = 100_000;

/**
 * Pushes each new notification to its recipient's subscriptions on this instance, once: the
 * outbox publishes at least once, and an event that arrives again (same id) is not pushed again.
 * The event's trace context rides with the pushed value to the gateway (see @platform/subgraph's
 * subscription server), whose per-event execution joins the trace.
 */
export function createLivePush(
  live: Pick<LiveHub<notificationV1.Notification>, 'publish'>,
  remembered = REMEMBERED_EVENTS,
): (event: EventEnvelope<'notification.created'>) => void {
  const pushed = new BoundedMap<string, true>(remembered);
  return ({ id, payload: notification }) => {
    if (pushed.has(id)) return;
    pushed.set(id, true);
    live.publish(
      notification.recipientId,
      carryTraceContext({ ...notification, readAt: undefined }),
    );
  };
}
