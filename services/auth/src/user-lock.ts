import type { AuthTx } from './auth.transactions';

/**
 * The auth service's one lock per user, held until `tx` ends. Every change of how the user signs
 * in takes it before it looks at what is there (a password set, changed or reset; a passkey
 * removed; an account linked or unlinked; the account deleted or locked out), and so does the
 * last step of every sign-in, where its session or second-factor challenge is created, before it
 * checks that the way it came in by still exists. A sign-in therefore commits either before a
 * change (which then ends its session with the others) or after it (and finds its way in gone):
 * never a session opened through a password, passkey or provider that a committed change removed.
 * One lock, not one per kind of change: transactions that need several never wait on each other
 * in opposite orders.
 */
export async function lockUser(tx: AuthTx, userId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('auth.credential'), hashtext(${userId}))`;
}
