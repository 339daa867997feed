import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { UpstreamSubscriptionError } from './federated-subscriptions';
import { endingSource, unlessTooSlow } from './socket-messages';
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

/**
 * An upstream subscription as graphql-ws's client iterates one: no event until one comes (here
 * none), and `return()` ends it at once, its pending `next()` then resolving done.
 */
function quietUpstream() {
  let wake = () => undefined as void;
  let ended = false;
  const upstream: AsyncIterableIterator<number> & { ended(): boolean } = {
    ended: () => ended,
    async next() {
      if (!ended) await new Promise<void>((resolve) => (wake = resolve));
      return { done: true, value: undefined };
    },
    async return() {
      ended = true;
      wake();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => upstream,
  };
  return upstream;
}

describe('endingSource', () => {
  it('ends the upstream subscription as soon as the client ends its own, with no event in between', async () => {
    for (const wrapped of [false, true]) {
      const upstream = quietUpstream();
      let finished = false;
      async function* results() {
        try {
          for await (const event of upstream) yield event;
        } finally {
          finished = true;
        }
      }
      const ending = endingSource(results(), upstream);
      const subscription = wrapped
        ? unlessTooSlow(ending, { bufferedAmount: 0 }, 1_000, () => undefined)
        : ending;
      // graphql-ws's server waits for the next result, then the client sends `complete`.
      const pending = subscription.next();
      const stalled = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('return() waited for an upstream event')), 1_000),
      );
      await Promise.race([subscription.return(undefined), stalled]);
      expect(upstream.ended()).toBe(true);
      expect(await pending).toEqual({ done: true, value: undefined });
      expect(finished).toBe(true);
    }
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
