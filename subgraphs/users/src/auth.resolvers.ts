import { AppError } from '@platform/errors';
import type { GrpcClient } from '@platform/grpc';
import type { Logger } from '@platform/logger';
import { type authV1, type permissionV1, userV1 } from '@platform/proto';
import { requireViewer } from '@platform/subgraph';
import {
  normalizeEmail,
  validateDisplayName,
  validateEmail,
  validatePassword,
} from '@platform/validation';
import type { AddressThrottle } from './address.throttle';
import { optionalCode } from './mfa-code';
import { createRegistrationPace, type RegistrationPace } from './registration.pace';
import type { UsersContext } from './users.resolvers';

export interface IdentityClients {
  users: GrpcClient<typeof userV1.UserServiceService>;
  auth: GrpcClient<typeof authV1.AuthServiceService>;
  permissions: GrpcClient<typeof permissionV1.PermissionServiceService>;
}

/** Every registered user holds this role from the moment `register` returns. */
const DEFAULT_ROLE = 'user';

export function payload(
  tokens: authV1.SessionTokens | undefined,
  user: userV1.User | null | undefined,
  deviceToken?: string,
) {
  if (!tokens || !user) throw new Error('service answered without tokens or user');
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresIn: tokens.expiresIn,
    deviceToken: deviceToken || null,
    user,
  };
}

/**
 * The payload of a session the auth service just opened (a sign-in, a refresh), if its user is
 * active; otherwise that session ends at once (a disabled or leaving account opens nothing) and
 * `refusal` is thrown.
 */
export async function activeSessionPayload(
  auth: IdentityClients['auth'],
  tokens: authV1.SessionTokens | undefined,
  deviceToken: string | undefined,
  context: UsersContext,
  refusal: () => AppError,
  logger: Pick<Logger, 'warn'>,
) {
  const user = tokens ? await context.users.load(tokens.userId) : null;
  if (!tokens || !user || !isActive(user)) {
    // Its tokens go to nobody; a session left open would still be listed, and count.
    if (tokens)
      await auth
        .revokeSession({ userId: tokens.userId, sessionId: tokens.sessionId })
        .catch((error: unknown) =>
          logger.warn(
            { err: error, userId: tokens.userId, sessionId: tokens.sessionId },
            'could not end the session of an account no longer active; its tokens were not handed out',
          ),
        );
    throw refusal();
  }
  return payload(tokens, user, deviceToken);
}

/** The user with this email, or undefined when there is none (or it is not an address). */
export async function findUserByEmail(
  users: IdentityClients['users'],
  email: string,
): Promise<userV1.User | undefined> {
  try {
    return (await users.getUserByEmail({ email })).user;
  } catch (error) {
    if (
      error instanceof AppError &&
      (error.code === 'NOT_FOUND' || error.code === 'BAD_USER_INPUT')
    ) {
      return undefined;
    }
    throw error;
  }
}

/** The one answer to a sign-in that opens nothing: unknown, disabled, or a wrong password. */
export const INVALID_LOGIN = 'Invalid email or password';

export const isActive = (user: userV1.User) => user.status === userV1.UserStatus.USER_STATUS_ACTIVE;

/**
 * A password sign-in as `login` and `signIn` make it: the address limit, then the auth
 * service's answer (tokens, or an MFA challenge). Unknown, disabled or wrong password: one
 * answer, in about the same time (auth hashes anyway), and the same guess limits, which the
 * auth service keeps.
 */
export async function passwordSignIn(
  { users, auth }: Pick<IdentityClients, 'users' | 'auth'>,
  throttle: AddressThrottle,
  args: {
    email: string;
    password: string;
    deviceToken?: string | null | undefined;
    mfaCode?: string | null | undefined;
  },
  context: UsersContext,
): Promise<authV1.LoginResponse> {
  // A blank code is none (the answer is then the challenge): it must not cost a guess.
  const mfaCode = optionalCode(args.mfaCode, 'mfaCode');
  await throttle.checkAddress(context.clientAddress);
  const email = normalizeEmail(args.email);
  const user = await findUserByEmail(users, email);
  return auth.login({
    userId: user && isActive(user) ? user.id : '',
    email,
    password: args.password,
    userAgent: context.userAgent ?? '',
    clientAddress: context.clientAddress ?? '',
    // Anything not shaped like a device token is ignored by the auth service.
    deviceToken: args.deviceToken ?? '',
    mfaCode,
  });
}

/**
 * The rest of a new account once its profile exists: the `user` role, then `firstWayIn` (a
 * password, or a linked provider identity) with the first session. If a step fails, the
 * profile is deleted again (its user.deleted event cleans up the rest): no half-created account.
 */
export async function completeAccount(
  { users, auth, permissions }: IdentityClients,
  logger: Logger,
  user: userV1.User,
  firstWayIn: () => Promise<authV1.SessionTokens | undefined>,
): Promise<authV1.SessionTokens | undefined> {
  try {
    await permissions.assignRole({
      actorId: '',
      userId: user.id,
      roleId: '',
      roleName: DEFAULT_ROLE,
      scope: '',
    });
    return await firstWayIn();
  } catch (error) {
    // Each undo step runs after the previous one, and a failed step does not stop the next.
    const undo = (step: () => Promise<unknown>, what: string) =>
      step().catch((cleanup: unknown) =>
        logger.error({ err: cleanup, userId: user.id }, `new account: could not remove ${what}`),
      );
    await undo(
      () =>
        auth.deleteCredential({
          userId: user.id,
          currentPassword: '',
          sessionId: '',
          clientAddress: '',
        }),
      'credential',
    );
    await undo(() => users.deleteUser({ id: user.id }), 'half-created user');
    throw error;
  }
}

/** Registration, sign-in and sessions: orchestrates the user, auth and permission services. */
export function createAuthResolvers(
  clients: IdentityClients,
  throttle: AddressThrottle,
  logger: Logger,
  pace: RegistrationPace = createRegistrationPace(),
) {
  const { users, auth } = clients;

  return {
    Query: {
      async mySessions(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { sessions } = await auth.listSessions({ userId: viewer.userId });
        return sessions.map((session) => ({
          ...session,
          userAgent: session.userAgent || null,
          current: session.id === viewer.sessionId,
        }));
      },
    },
    Mutation: {
      async register(
        _: unknown,
        { input }: { input: { email: string; password: string; displayName: string } },
        context: UsersContext,
      ) {
        await throttle.checkAddress(context.clientAddress);
        // Everything is checked before anything is written.
        const email = validateEmail(input.email);
        const displayName = validateDisplayName(input.displayName);
        const password = validatePassword(input.password);
        const started = performance.now();
        const elapsed = () => performance.now() - started;
        const { user } = await users.createUser({ email, displayName }).catch(async (error) => {
          // A taken email answers CONFLICT, but no sooner than a registration that succeeds.
          if (error instanceof AppError && error.code === 'CONFLICT')
            await pace.padRefusal(elapsed);
          throw error;
        });
        if (!user) throw new Error('user service answered without a user');
        const tokens = await completeAccount(clients, logger, user, async () => {
          const created = await auth.createCredential({
            userId: user.id,
            password,
            userAgent: context.userAgent ?? '',
          });
          return created.tokens;
        });
        const answer = payload(tokens, user);
        pace.record(elapsed());
        return answer;
      },

      async login(
        _: unknown,
        args: {
          email: string;
          password: string;
          deviceToken?: string | null;
          mfaCode?: string | null;
        },
        context: UsersContext,
      ) {
        const { tokens, deviceToken, mfaChallenge } = await passwordSignIn(
          clients,
          throttle,
          args,
          context,
        );
        // AuthPayload always carries tokens: for an account with a second factor, login answers
        // the challenge the right password earned in the error (signIn answers it as data).
        if (mfaChallenge)
          throw new AppError('UNAUTHENTICATED', 'This account needs a second factor: verifyMfa', {
            reason: 'MFA_REQUIRED',
            details: {
              mfaChallenge: {
                challenge: mfaChallenge.challenge,
                expiresAt: mfaChallenge.expiresAt?.toISOString(),
                methods: mfaChallenge.methods,
              },
            },
          });
        // The account is read again once the session exists: one disabled while the password
        // was being checked (its lock-out ran before this session committed) gets no session.
        return activeSessionPayload(
          auth,
          tokens,
          deviceToken,
          context,
          () => AppError.unauthenticated(INVALID_LOGIN),
          logger,
        );
      },

      async refreshSession(_: unknown, args: { refreshToken: string }, context: UsersContext) {
        const { tokens } = await auth.refreshSession({
          refreshToken: args.refreshToken,
          userAgent: context.userAgent ?? '',
        });
        return activeSessionPayload(
          auth,
          tokens,
          undefined,
          context,
          () => AppError.unauthenticated('Invalid or expired refresh token'),
          logger,
        );
      },

      async logout(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        await auth.revokeSession({ userId: viewer.userId, sessionId: viewer.sessionId });
        return true;
      },

      async revokeSession(_: unknown, args: { id: string }, context: UsersContext) {
        const viewer = requireViewer(context);
        await auth.revokeSession({ userId: viewer.userId, sessionId: args.id });
        return true;
      },

      async logoutAll(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        await auth.revokeAllSessions({
          userId: viewer.userId,
          exceptSessionId: '',
          reason: 'logout_all',
        });
        return true;
      },
    },
  };
}
