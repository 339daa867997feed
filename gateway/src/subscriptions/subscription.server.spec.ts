import { describe, expect, it } from 'vitest';
import { unlessTooSlow } from './socket-messages';

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
