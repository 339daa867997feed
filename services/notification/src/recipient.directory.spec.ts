import { describe, expect, it } from 'vitest';
import { AppError } from '@platform/errors';
import { createRecipientDirectory } from './recipient.directory';

type UserLookup = Parameters<typeof createRecipientDirectory>[0];

/** A user service that knows `existing` and counts how often it is asked. */
function userService(existing: Set<string>): UserLookup & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    getUser: ({ id }) => {
      asked.push(id);
      if (!existing.has(id)) return Promise.reject(AppError.notFound('User'));
      return Promise.resolve({ user: undefined });
    },
  };
}

describe('recipient directory', () => {
  it('asks the user service once per user while it remembers them', async () => {
    const users = userService(new Set(['a']));
    const directory = createRecipientDirectory(users);
    await directory.requireExists('a');
    await directory.requireExists('a');
    expect(users.asked).toEqual(['a']);
  });

  it('never remembers absence: a user who appears later is found at once', async () => {
    const existing = new Set<string>();
    const users = userService(existing);
    const directory = createRecipientDirectory(users);
    await expect(directory.requireExists('b')).rejects.toThrow(/User not found/);
    existing.add('b');
    await expect(directory.requireExists('b')).resolves.toBeUndefined();
  });

  it('asks again after the time to live, and forgets the oldest beyond its size', async () => {
    let now = 0;
    const users = userService(new Set(['a', 'b', 'c']));
    const directory = createRecipientDirectory(users, {
      ttlMs: 1_000,
      maxEntries: 2,
      now: () => now,
    });
    await directory.requireExists('a');
    now = 1_001;
    await directory.requireExists('a');
    expect(users.asked).toEqual(['a', 'a']);

    await directory.requireExists('b');
    await directory.requireExists('c'); // 'a' is the oldest: out
    await directory.requireExists('b');
    await directory.requireExists('a');
    expect(users.asked).toEqual(['a', 'a', 'b', 'c', 'a']);
  });
});
