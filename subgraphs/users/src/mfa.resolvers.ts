import type { Logger } from '@platform/logger';
import DataLoader from 'dataloader';
import { AppError } from '@platform/errors';
import { PERMISSIONS } from '@platform/permissions';
import { type authV1, type userV1 } from '@platform/proto';
import { requireViewer } from '@platform/subgraph';
import type { AddressThrottle } from './address.throttle';
import {
  activeSessionPayload,
  INVALID_LOGIN,
  passwordSignIn,
  type IdentityClients,
} from './auth.resolvers';
import { optionalCode } from './mfa-code';
import type { UsersContext } from './users.resolvers';

type AuthClient = IdentityClients['auth'];

/** A challenge is 43 characters; anything much longer is not one. */
const MAX_CHALLENGE_LENGTH = 64;
const MAX_PASSWORD_LENGTH = 1024;

function requireCode(code: string, field = 'code'): string {
  const trimmed = optionalCode(code, field);
  if (!trimmed) throw AppError.badInput(field, 'is required');
  return trimmed;
}

/** One GetMfaStatus call per tick for every `User.mfaEnrolled` a request reads. */
const statusLoaders = new WeakMap<object, DataLoader<string, boolean>>();
function mfaStatusLoader(auth: AuthClient, context: UsersContext) {
  let loader = statusLoaders.get(context);
  if (!loader) {
    loader = new DataLoader(async (ids) => {
      const { statuses } = await auth.getMfaStatus({ userIds: [...ids] });
      // A passkey counts as multi-factor too (it proves possession and the user's PIN or biometrics).
      const enrolled = new Set(
        statuses.filter((s) => s.totpEnabled || s.passkeys > 0).map((s) => s.userId),
      );
      return ids.map((id) => enrolled.has(id));
    });
    statusLoaders.set(context, loader);
  }
  return loader;
}

export function challengeOf(challenge: authV1.MfaChallenge) {
  return {
    __typename: 'MfaChallenge' as const,
    challenge: challenge.challenge,
    expiresAt: challenge.expiresAt,
    methods: challenge.methods,
  };
}

/**
 * Multi-factor sign-in and the management of second factors (docs/identity.md). The auth
 * service keeps the rules; this validates input, names the caller and shapes the answers.
 */
export function createMfaResolvers(
  { users, auth }: Pick<IdentityClients, 'users' | 'auth'>,
  throttle: AddressThrottle,
  logger: Pick<Logger, 'warn'>,
) {
  /** The tokens of a completed sign-in, refused if the account was disabled meanwhile. */
  async function signedIn(
    tokens: authV1.SessionTokens | undefined,
    deviceToken: string,
    context: UsersContext,
  ) {
    return {
      __typename: 'AuthPayload' as const,
      ...(await activeSessionPayload(
        auth,
        tokens,
        deviceToken,
        context,
        () => AppError.unauthenticated(INVALID_LOGIN),
        logger,
      )),
    };
  }

  return {
    SignInResult: {
      __resolveType: (result: { __typename: 'AuthPayload' | 'MfaChallenge' }) => result.__typename,
    },
    User: {
      async mfaEnrolled(user: userV1.User, _: unknown, context: UsersContext) {
        await context.authz.requireSelfOr(user.id, PERMISSIONS['users:read']);
        return mfaStatusLoader(auth, context).load(user.id);
      },
    },
    Query: {
      async myMfa(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { statuses } = await auth.getMfaStatus({ userIds: [viewer.userId] });
        const [status] = statuses;
        return {
          totpEnabled: status?.totpEnabled ?? false,
          recoveryCodesLeft: status?.recoveryCodesLeft ?? 0,
        };
      },
    },
    Mutation: {
      async signIn(
        _: unknown,
        args: {
          email: string;
          password: string;
          deviceToken?: string | null;
          mfaCode?: string | null;
        },
        context: UsersContext,
      ) {
        const answer = await passwordSignIn({ users, auth }, throttle, args, context);
        if (answer.mfaChallenge) return challengeOf(answer.mfaChallenge);
        return signedIn(answer.tokens, answer.deviceToken, context);
      },

      async verifyMfa(
        _: unknown,
        args: { challenge: string; code: string },
        context: UsersContext,
      ) {
        if (!args.challenge || args.challenge.length > MAX_CHALLENGE_LENGTH)
          throw AppError.unauthenticated(
            'The sign-in challenge is invalid or has expired; sign in again',
          );
        const code = requireCode(args.code);
        const { tokens, deviceToken } = await auth.verifyMfa({
          challenge: args.challenge,
          code,
          clientAddress: context.clientAddress ?? '',
        });
        return signedIn(tokens, deviceToken, context);
      },

      async reauthenticate(
        _: unknown,
        args: { password?: string | null; code?: string | null },
        context: UsersContext,
      ) {
        const viewer = requireViewer(context);
        const password = args.password ?? '';
        const code = args.code ? requireCode(args.code) : '';
        if (!password === !code) throw AppError.badInput('password', 'give a password or a code');
        if (password.length > MAX_PASSWORD_LENGTH)
          throw AppError.badInput('password', 'is not your current password');
        const { recentUntil } = await auth.reauthenticate({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          password,
          code,
          clientAddress: context.clientAddress ?? '',
        });
        return { recentUntil };
      },

      async beginTotpEnrollment(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const user = await context.users.load(viewer.userId);
        const { secret, otpauthUri } = await auth.beginTotpEnrollment({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          accountName: user?.email ?? '',
        });
        return { secret, otpauthUri };
      },

      async confirmTotpEnrollment(_: unknown, args: { code: string }, context: UsersContext) {
        const viewer = requireViewer(context);
        const { recoveryCodes } = await auth.confirmTotpEnrollment({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          code: requireCode(args.code),
          clientAddress: context.clientAddress ?? '',
        });
        return { codes: recoveryCodes };
      },

      async disableTotp(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        await auth.disableTotp({ userId: viewer.userId, sessionId: viewer.sessionId });
        return true;
      },

      async regenerateRecoveryCodes(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { recoveryCodes } = await auth.regenerateRecoveryCodes({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
        });
        return { codes: recoveryCodes };
      },
    },
  };
}
