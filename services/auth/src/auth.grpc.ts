import type { UnaryHandlers } from '@platform/grpc';
import type { authV1 } from '@platform/proto';
import type { SigningKeyRepository } from './signing-key.repository';

export function createAuthHandlers(deps: {
  signingKeys: SigningKeyRepository;
}): UnaryHandlers<typeof authV1.AuthServiceService> {
  return {
    async getJwks() {
      return { keys: await deps.signingKeys.publishedKeys() };
    },
  };
}
