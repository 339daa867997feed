/**
 * This instance's live subscribers, by user. Each subscription is an async iterator with a
 * bounded buffer: a subscriber that falls `maxBuffered` events behind is ended with an
 * error rather than buffered without bound.
 */
export interface LiveHub<T> {
  subscribe(userId: string): AsyncIterableIterator<T>;
  publish(userId: string, value: T): void;
  hasSubscribers(userId: string): boolean;
  /** Subscriptions open on this instance. */
  size(): number;
  /** Ends every subscription (shutdown). */
  close(): void;
}

interface Subscriber<T> {
  push(value: T): void;
  end(error?: Error): void;
}

export function createLiveHub<T>(options: { maxBuffered?: number } = {}): LiveHub<T> {
  const maxBuffered = options.maxBuffered ?? 100;
  const byUser = new Map<string, Set<Subscriber<T>>>();
  let count = 0;

  return {
    subscribe(userId) {
      const buffered: T[] = [];
      let waiting: ((result: IteratorResult<T>) => void) | undefined;
      let failWaiting: ((error: Error) => void) | undefined;
      let done = false;
      let failure: Error | undefined;

      const subscriber: Subscriber<T> = {
        push(value) {
          if (done) return;
          if (waiting) {
            const resolve = waiting;
            waiting = failWaiting = undefined;
            resolve({ value, done: false });
          } else if (buffered.length >= maxBuffered) {
            subscriber.end(new Error('subscriber too slow: live buffer full'));
          } else buffered.push(value);
        },
        end(error) {
          if (done) return;
          done = true;
          failure = error;
          const set = byUser.get(userId);
          set?.delete(subscriber);
          if (set?.size === 0) byUser.delete(userId);
          count--;
          if (error && failWaiting) failWaiting(error);
          else waiting?.({ value: undefined, done: true });
          waiting = failWaiting = undefined;
        },
      };
      const set = byUser.get(userId) ?? new Set();
      set.add(subscriber);
      byUser.set(userId, set);
      count++;

      const iterator: AsyncIterableIterator<T> = {
        next() {
          const value = buffered.shift();
          if (value !== undefined) return Promise.resolve({ value, done: false });
          if (failure) return Promise.reject(failure);
          if (done) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve, reject) => {
            waiting = resolve;
            failWaiting = reject;
          });
        },
        return() {
          subscriber.end();
          return Promise.resolve({ value: undefined, done: true });
        },
        throw(error?: unknown) {
          subscriber.end(error instanceof Error ? error : undefined);
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
    publish(userId, value) {
      for (const subscriber of byUser.get(userId) ?? []) subscriber.push(value);
    },
    hasSubscribers: (userId) => byUser.has(userId),
    size: () => count,
    close() {
      for (const set of [...byUser.values()]) for (const subscriber of [...set]) subscriber.end();
    },
  };
}
