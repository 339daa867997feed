import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PreparedStatement } from '@platform/db';
import { createEvent, type EventEnvelope } from '@platform/events';
import { createLogger } from '@platform/logger';
import { createOutboxRelay } from './outbox.relay';

const logger = createLogger({ name: 'outbox-relay-test', level: 'silent' });
const CLAIM_MS = 1_000;

/**
 * The outbox table as the relay's two statements see it: a claim leases the oldest unleased
 * unpublished rows, a settle marks and releases rows still under the caller's lease.
 */
function outboxTable(events: EventEnvelope[]) {
  const rows = events.map((envelope) => ({
    envelope,
    claimedUntil: undefined as number | undefined,
    published: false,
  }));
  let clock = 0;
  return {
    rows,
    db: {
      $run<T>(statement: PreparedStatement, values: readonly unknown[]): Promise<T[]> {
        if (statement.name.startsWith('outbox-claim')) {
          const [limit] = values as [number];
          const now = Date.now();
          const lease = String(now + CLAIM_MS + clock++ / 1_000);
          const claimed = rows
            .filter((row) => !row.published && (row.claimedUntil ?? 0) < now)
            .slice(0, limit);
          for (const row of claimed) row.claimedUntil = Number(lease);
          return Promise.resolve(
            claimed.map((row) => ({ id: row.envelope.id, envelope: row.envelope, lease })) as T[],
          );
        }
        if (statement.name.startsWith('outbox-settle')) {
          const [published, all, lease] = values as [string[], string[], string];
          for (const row of rows) {
            if (!all.includes(row.envelope.id) || row.claimedUntil !== Number(lease)) continue;
            row.claimedUntil = undefined;
            if (published.includes(row.envelope.id)) row.published = true;
          }
          return Promise.resolve([]);
        }
        return Promise.resolve([{ count: 0, age: 0 }] as T[]); // the backlog gauge
      },
    },
  };
}

/** Lets every settled promise chain run on (no I/O is involved: only the fakes above). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('outbox relay', () => {
  afterEach(() => vi.useRealTimers());

  it('never drains with two runs side by side: a run abandoned after its lease claims nothing more when it wakes up', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'Date'] });
    const events = Array.from({ length: 4 }, () =>
      createEvent('user.status_changed', {
        userId: '00000000-0000-4000-8000-000000000001',
        status: 'DISABLED',
      }),
    );
    const table = outboxTable(events);
    const pending: { id: string; release: () => void }[] = [];
    let inFlight = 0;
    let mostInFlightAfterWake = 0;
    let woken = false;
    const broker = {
      publish: (event: EventEnvelope) =>
        new Promise<void>((resolve) => {
          inFlight += 1;
          if (woken) mostInFlightAfterWake = Math.max(mostInFlightAfterWake, inFlight);
          pending.push({
            id: event.id,
            release: () => {
              inFlight -= 1;
              resolve();
            },
          });
        }),
    };
    const relay = createOutboxRelay({
      db: table.db,
      schema: 'user',
      broker,
      logger,
      pollIntervalMs: 50,
      batchSize: 1,
      claimMs: CLAIM_MS,
    });
    await settle();
    // The first run publishes the first event, and the broker stalls past the lease.
    expect(pending.map((call) => call.id)).toEqual([events[0]!.id]);
    await vi.advanceTimersByTimeAsync(CLAIM_MS + 100);
    // The run was given up; the next poll's run is publishing (the event it took over, or
    // the next one while the first is still leased).
    expect(pending).toHaveLength(2);

    // The stalled broker answers while the new run's publish is still under way.
    woken = true;
    pending[0]!.release();
    await settle();
    await settle();
    // The abandoned run settled what it held, if still its own, and claimed nothing more.
    expect(pending).toHaveLength(2);
    expect(mostInFlightAfterWake).toBe(0);

    // The current run goes on alone and publishes the rest, one at a time.
    for (let released = 1; table.rows.some((row) => !row.published); released++) {
      await vi.waitFor(() => expect(pending.length).toBeGreaterThan(released));
      pending[released]!.release();
      await settle();
      await vi.advanceTimersByTimeAsync(100); // the next poll, for an event leased meanwhile
    }
    expect(mostInFlightAfterWake).toBe(1);
    await relay.stop();
  });
});
