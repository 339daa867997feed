import type { Logger } from '@platform/logger';
import { AppError } from '@platform/errors';
import type { authV1 } from '@platform/proto';
import { requireViewer } from '@platform/subgraph';
import type { AddressThrottle } from './address.throttle';
import { activeSessionPayload, type IdentityClients } from './auth.resolvers';
import type { UsersContext } from './users.resolvers';

/**
 * A ceremony response is JSON of a few KiB at most (attestation certificates included); the
 * auth service refuses more, the edge refuses it before it travels.
 */
const MAX_RESPONSE_LENGTH = 64 * 1024;
const MAX_NAME_LENGTH = 64;
/** A passkey id is a uuid; a device token 43 characters. */
const MAX_ID_LENGTH = 64;

const signInFailed = () => AppError.unauthenticated('Passkey sign-in failed; begin again');

function requireResponse(response: string): string {
  if (!response.trim()) throw AppError.badInput('response', 'is required');
  if (response.length > MAX_RESPONSE_LENGTH)
    throw AppError.badInput('response', `is longer than ${MAX_RESPONSE_LENGTH} characters`);
  return response;
}

const passkeyOf = (passkey: authV1.Passkey) => ({
  id: passkey.id,
  name: passkey.name,
  createdAt: passkey.createdAt,
  lastUsedAt: passkey.lastUsedAt ?? null,
  transports: passkey.transports,
  backedUp: passkey.backedUp,
});

/**
 * Passkeys (WebAuthn) through the API (docs/identity.md, "Passkeys"): the ceremonies' options
 * and responses travel as JSON strings, unchanged, between the browser and the auth service,
 * which keeps every rule; this validates sizes, names the caller and shapes the answers.
 */
export function createPasskeyResolvers(
  { auth }: Pick<IdentityClients, 'auth'>,
  throttle: AddressThrottle,
  logger: Pick<Logger, 'warn'>,
) {
  return {
    Query: {
      async myPasskeys(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { passkeys } = await auth.listPasskeys({ userId: viewer.userId });
        return passkeys.map(passkeyOf);
      },
    },
    Mutation: {
      async beginPasskeyRegistration(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const user = await context.users.load(viewer.userId);
        const { optionsJson } = await auth.beginPasskeyRegistration({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          userName: user?.email ?? '',
        });
        return optionsJson;
      },

      async finishPasskeyRegistration(
        _: unknown,
        args: { response: string; name?: string | null },
        context: UsersContext,
      ) {
        const viewer = requireViewer(context);
        const name = args.name?.trim() ?? '';
        if (name.length > MAX_NAME_LENGTH)
          throw AppError.badInput('name', `is longer than ${MAX_NAME_LENGTH} characters`);
        const { passkey } = await auth.finishPasskeyRegistration({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          responseJson: requireResponse(args.response),
          name,
        });
        if (!passkey) throw new Error('FinishPasskeyRegistration answered no passkey');
        return passkeyOf(passkey);
      },

      async beginPasskeyReauthentication(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { optionsJson } = await auth.beginPasskeyReauthentication({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
        });
        return optionsJson;
      },

      async reauthenticateWithPasskey(
        _: unknown,
        args: { response: string },
        context: UsersContext,
      ) {
        const viewer = requireViewer(context);
        const { recentUntil } = await auth.reauthenticateWithPasskey({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          responseJson: requireResponse(args.response),
          clientAddress: context.clientAddress ?? '',
        });
        return { recentUntil };
      },

      async removePasskey(_: unknown, args: { id: string }, context: UsersContext) {
        const viewer = requireViewer(context);
        if (!args.id || args.id.length > MAX_ID_LENGTH) throw AppError.notFound('Passkey');
        await auth.removePasskey({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          passkeyId: args.id,
        });
        return true;
      },

      async beginPasskeyLogin(
        _: unknown,
        args: { challenge?: string | null },
        context: UsersContext,
      ) {
        // Every sign-in try needs a new challenge: counting these limits an address's tries.
        await throttle.checkAddress(context.clientAddress);
        const mfaChallenge = args.challenge ?? '';
        if (mfaChallenge.length > MAX_ID_LENGTH)
          throw AppError.unauthenticated(
            'The sign-in challenge is invalid or has expired; sign in again',
          );
        const { optionsJson } = await auth.beginPasskeyLogin({ mfaChallenge });
        return optionsJson;
      },

      async finishPasskeyLogin(
        _: unknown,
        args: { response: string; deviceToken?: string | null },
        context: UsersContext,
      ) {
        const deviceToken = args.deviceToken ?? '';
        const { tokens, deviceToken: issued } = await auth.finishPasskeyLogin({
          responseJson: requireResponse(args.response),
          userAgent: context.userAgent ?? '',
          clientAddress: context.clientAddress ?? '',
          deviceToken: deviceToken.length <= MAX_ID_LENGTH ? deviceToken : '',
        });
        // A disabled account's passkey opens nothing: the session just opened ends at once.
        return activeSessionPayload(auth, tokens, issued, context, signInFailed, logger);
      },
    },
  };
}
