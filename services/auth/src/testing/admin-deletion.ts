import { randomUUID } from 'node:crypto';
import type { CredentialService } from '../credential.service';
import type { GuessingClient } from '../password-guard';

/** Deletes the account as an administrator would: another user acting, no password asked. */
export function deleteAsAdmin(
  credentials: Pick<CredentialService, 'delete'>,
  userId: string,
  client: GuessingClient,
): Promise<void> {
  return credentials.delete(userId, { actorId: randomUUID(), currentPassword: undefined, client });
}
