import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { UpstreamSubscriptionError } from './federated-subscriptions';
import { unlessTooSlow } from './socket-messages';
import { formatSubscriptionFailure } from './subscription.server';

async function* events(count: number): AsyncGenerator<number> {
  for (let n = 0; n < count; n++) yield n;
}

describe('unlessTooSlow', () => {
  it('passes every result on while the client keeps up', async () => {
    const socket = { bufferedAmount: 0 };
    const seen: number[] = [];
    for await (const n of unlessTooSlow(events(5), socket, 1_000, () => undefined)) seen.push(n);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('stops and reports once the unsent data passes the limit, and the source is closed', async () => {
    const socket = { bufferedAmount: 0 };
    let finished = false;
    async function* source() {
      try {
        yield* events(10);
      } finally {
        finished = true;
      }
    }
    const seen: number[] = [];
    let reported = 0;
    for await (const n of unlessTooSlow(source(), socket, 1_000, () => reported++)) {
      seen.push(n);
      if (n === 2) socket.bufferedAmount = 5_000; // the client stopped reading
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(reported).toBe(1);
    expect(finished).toBe(true);
  });
});

describe('formatSubscriptionFailure', () => {
  // As graphql-ws hands a subscription's failure to `onError`: the thrown error, wrapped.
  const thrown = (error: Error) => new GraphQLError(error.message, { originalError: error });

  it('passes a subgraph outage on with its code, and answers one here as SERVICE_UNAVAILABLE', () => {
    const logged: unknown[] = [];
    const upstream = new UpstreamSubscriptionError([
      {
        message: 'Service temporarily unavailable; try again shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      },
    ]);
    expect(
      formatSubscriptionFailure(
        [thrown(upstream), thrown(new Error('Connection is closed.'))],
        (error) => logged.push(error),
      ),
    ).toEqual([
      {
        message: 'Service temporarily unavailable; try again shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      },
      {
        message: 'Service temporarily unavailable; try again shortly',
        extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      },
    ]);
  });

  it('masks anything else, and leaves refusals made before the subscription ran alone', () => {
    const logged: unknown[] = [];
    expect(
      formatSubscriptionFailure([thrown(new TypeError('x is undefined'))], (error) =>
        logged.push(error),
      ),
    ).toEqual([
      { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } },
    ]);
    expect(logged).toHaveLength(1);
    const refusal = new GraphQLError('At most 10 subscriptions at once', {
      extensions: { code: 'RATE_LIMITED', retryAfter: 60 },
    });
    expect(formatSubscriptionFailure([refusal], () => undefined)).toBeUndefined();
  });
});
