import { describe, expect, it } from 'vitest';
import { createLiveHub } from './live-hub';

describe('createLiveHub', () => {
  it('delivers to the user subscribed, in order, and nothing to others', async () => {
    const hub = createLiveHub<number>();
    const alice = hub.subscribe('alice');
    const bob = hub.subscribe('bob');
    hub.publish('alice', 1);
    hub.publish('alice', 2);
    expect(await alice.next()).toEqual({ value: 1, done: false });
    expect(await alice.next()).toEqual({ value: 2, done: false });
    const waiting = alice.next();
    hub.publish('alice', 3);
    expect(await waiting).toEqual({ value: 3, done: false });
    await bob.return?.();
    expect(hub.hasSubscribers('bob')).toBe(false);
    expect(hub.size()).toBe(1);
  });

  it('ends a subscriber that falls too far behind, instead of buffering without bound', async () => {
    const hub = createLiveHub<number>({ maxBuffered: 3 });
    const slow = hub.subscribe('slow');
    for (let n = 0; n < 5; n++) hub.publish('slow', n);
    expect(hub.size()).toBe(0);
    expect(await slow.next()).toEqual({ value: 0, done: false });
    await slow.next();
    await slow.next();
    await expect(slow.next()).rejects.toThrow(/too slow/);
  });

  it('ends every subscription on close', async () => {
    const hub = createLiveHub<number>();
    const pending = hub.subscribe('a').next();
    hub.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(hub.size()).toBe(0);
  });
});
