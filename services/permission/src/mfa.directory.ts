import type { GrpcClient } from '@platform/grpc';
import type { authV1 } from '@platform/proto';
import type { MfaStateRow } from './mfa-state.repository';

/** What the permission service asks the auth service (which owns second factors). */
export interface MfaDirectory {
  /** Whether the user has a second factor (a confirmed TOTP factor or a passkey), and its version. */
  stateOf(userId: string): Promise<MfaStateRow>;
}

export function createMfaDirectory(
  auth: GrpcClient<typeof authV1.AuthServiceService>,
): MfaDirectory {
  return {
    async stateOf(userId) {
      const answer = await auth.getMfaStatus({ userIds: [userId] });
      const status = answer.statuses.find((candidate) => candidate.userId === userId);
      return {
        enrolled: !!status && (status.totpEnabled || status.passkeys > 0),
        version: answer.stateVersions[userId] ?? 0,
      };
    },
  };
}
