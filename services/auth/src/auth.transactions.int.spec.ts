import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { useAuthTestWorld } from './testing/auth.test-world';

describe('auth transactions against PostgreSQL', () => {
  const world = useAuthTestWorld();
  const outboxIds = async () => (await world.outboxEvents()).map((event) => event.id);

  it('writes the events of a transaction that commits, then wakes the relay and runs what waits for the commit', async () => {
    const event = createEvent('auth.password_changed', { userId: randomUUID() });
    const kicks = world.relayKicks;
    const seenAfterCommit: string[][] = [];
    await world.transactions.run(async (tx) => {
      await tx.emit(event);
      tx.afterCommit(async () => void seenAfterCommit.push(await outboxIds()));
    });
    expect(seenAfterCommit).toEqual([expect.arrayContaining([event.id])]);
    expect(world.relayKicks).toBe(kicks + 1);
  });

  it('leaves no event, no relay run and no after-commit effect behind a transaction that fails', async () => {
    const event = createEvent('auth.password_changed', { userId: randomUUID() });
    const kicks = world.relayKicks;
    let effects = 0;
    const failed = world.transactions.run(async (tx) => {
      await tx.emit(event);
      tx.afterCommit(async () => void effects++);
      throw new Error('a rule said no');
    });
    await expect(failed).rejects.toThrow('a rule said no');
    expect(await outboxIds()).not.toContain(event.id);
    expect([world.relayKicks, effects]).toEqual([kicks, 0]);
  });

  it('does not wake the relay for a transaction without events', async () => {
    const kicks = world.relayKicks;
    expect(await world.transactions.run(async () => 'done')).toBe('done');
    expect(world.relayKicks).toBe(kicks);
  });
});
