import { textOf } from '@platform/http-server';

/**
 * `results`, which reads `source`, with a `return()` that ends `source` at once. An async
 * generator's own `return()` waits for the await it is paused on, here the next event of an
 * upstream subscription, which may never come: ending a subscription (a `complete`, a closed
 * socket) would otherwise leave its upstream subscription running, and the generator held,
 * until that subscription's next event.
 */
export function endingSource<T>(
  results: AsyncGenerator<T>,
  source: { return?: (value?: undefined) => unknown },
): AsyncGenerator<T> {
  const ending: AsyncGenerator<T> = {
    next: (...args) => results.next(...args),
    async return() {
      await source.return?.(undefined);
      // The generator's own return settles once the source's end reaches it (its `finally`
      // blocks run then); not awaited, so that nothing here waits on the source again.
      results.return(undefined).catch(() => undefined);
      return { done: true, value: undefined };
    },
    throw: (error) => results.throw(error),
    [Symbol.asyncIterator]: () => ending,
  };
  return ending;
}

/**
 * Passes results on while the client keeps up: once more than `maxBufferedBytes` wait unsent
 * on its socket, calls `tooSlow` (which closes it) and stops, instead of buffering more. Ending
 * it ends `results` at once (endingSource).
 */
export function unlessTooSlow<T>(
  results: AsyncGenerator<T>,
  socket: { readonly bufferedAmount: number },
  maxBufferedBytes: number,
  tooSlow: () => void,
): AsyncGenerator<T> {
  async function* passOn(): AsyncGenerator<T> {
    for await (const result of results) {
      if (socket.bufferedAmount > maxBufferedBytes) {
        tooSlow();
        return;
      }
      yield result;
    }
  }
  return endingSource(passOn(), results);
}

/**
 * `results`, and a `stop` that ends them: `ended` is called once, when they end however they
 * end (run out, failed, or returned by their reader or by `stop`). Returning them again, from
 * either side, ends them once.
 */
export function endingOnce<T>(
  results: AsyncGenerator<T>,
  ended: () => void,
): { results: AsyncGenerator<T>; stop: () => void } {
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    ended();
  };
  let returned: Promise<IteratorResult<T>> | undefined;
  const once: AsyncGenerator<T> = {
    async next(...args) {
      try {
        const step = await results.next(...args);
        if (step.done) finish();
        return step;
      } catch (error) {
        finish();
        throw error;
      }
    },
    return(value) {
      returned ??= results.return(value).finally(finish);
      return returned;
    },
    async throw(error) {
      try {
        return await results.throw(error);
      } finally {
        finish();
      }
    },
    [Symbol.asyncIterator]: () => once,
  };
  return { results: once, stop: () => void once.return(undefined).catch(() => undefined) };
}

export const byteLength = (data: Buffer | ArrayBuffer | Buffer[]): number =>
  Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;

/** The id of a graphql-ws `complete` message; undefined for any other message. */
export function completedId(data: Buffer | ArrayBuffer | Buffer[]): string | undefined {
  const text = textOf(data);
  if (!text.includes('"complete"')) return undefined;
  try {
    const message = JSON.parse(text) as { type?: unknown; id?: unknown };
    return message.type === 'complete' && typeof message.id === 'string' ? message.id : undefined;
  } catch {
    return undefined;
  }
}
