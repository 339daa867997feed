// Test-only: users for the integration tests.
import { randomUUID } from 'node:crypto';

/** A profile to register, with an address no other test uses. */
export function newUser(change: { email?: string; displayName?: string } = {}) {
  const name = `user-${randomUUID().slice(0, 8)}`;
  return { email: `${name}@example.com`, displayName: name, ...change };
}
