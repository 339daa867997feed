import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import type { notificationV1 } from '@platform/proto';
import { createLiveHub } from './live-hub';
import { createLivePush } from './live-push';

const recipientId = randomUUID();

function created(title: string) {
  return createEvent('notification.created', {
    id: randomUUID(),
    recipientId,
    type: 'note',
    title,
    body: '',
    data: null,
    createdAt: new Date(),
  });
}

/** What a subscriber of the recipient has received so far. */
async function received(subscription: AsyncIterableIterator<notificationV1.Notification>) {
  const titles: string[] = [];
  for (;;) {
    const next = await Promise.race([
      subscription.next(),
      new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined))),
    ]);
    if (!next || next.done) return titles;
    titles.push(next.value.title);
  }
}

describe(createLivePush.name, () => {
  it('pushes a notification once when its event arrives again (the outbox published it twice)', async () => {
    const live = createLiveHub<notificationV1.Notification>();
    const subscription = live.subscribe(recipientId);
    const push = createLivePush(live);
    const first = created('first');
    const second = created('second');
    for (const event of [first, first, second, first, second]) push(event);
    expect(await received(subscription)).toEqual(['first', 'second']);
    live.close();
  });

  it('remembers a bounded number of events, the latest', async () => {
    const live = createLiveHub<notificationV1.Notification>();
    const subscription = live.subscribe(recipientId);
    const push = createLivePush(live, 2);
    const [a, b, c] = [created('a'), created('b'), created('c')];
    for (const event of [a, b, c, c, b, a]) push(event);
    // `a` was forgotten once `c` came: pushed again, as an event that old is no duplicate
    // the outbox still sends.
    expect(await received(subscription)).toEqual(['a', 'b', 'c', 'a']);
    live.close();
  });
});
