import type { GrpcClient } from '@platform/grpc';
import type { authV1 } from '@platform/proto';
import type { MfaStateRow } from './mfa-state.repository';

/** What the permission service asks the auth service (which owns second factors). */
export interface MfaDirectory {
  /**
   * Whether each user has a second factor (a confirmed TOTP factor or a passkey), and its
   * version: one call for all of them. A user the auth service does not know: none, version 0.
   */
  statesOf(userIds: readonly string[]): Promise<Map<string, MfaStateRow>>;
}

export function createMfaDirectory(
  auth: GrpcClient<typeof authV1.AuthServiceService>,
): MfaDirectory {
  return {
    async statesOf(requested) {
      const userIds = [...new Set(requested)];
      if (userIds.length === 0) return new Map();
      const answer = await auth.getMfaStatus({ userIds });
      const statuses = new Map(answer.statuses.map((status) => [status.userId, status]));
      return new Map(
        userIds.map((userId) => {
          const status = statuses.get(userId);
          return [
            userId,
            {
              enrolled: !!status && (status.totpEnabled || status.passkeys > 0),
              version: answer.stateVersions[userId] ?? 0,
            },
          ];
        }),
      );
    },
  };
}
