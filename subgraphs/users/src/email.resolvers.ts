import { AppError } from '@platform/errors';
import { requireViewer } from '@platform/subgraph';
import { validatePassword } from '@platform/validation';
import { findUserByEmail, isActive, type IdentityClients } from './auth.resolvers';
import type { AddressThrottle } from './address.throttle';
import type { UsersContext } from './users.resolvers';

/**
 * The mailed token's holder (as the auth service names it) is an active account; a token of an
 * account disabled or removed since is refused as one that cannot be used, telling nothing more.
 */
async function requireActiveHolder(
  context: UsersContext,
  holder: Promise<{ userId: string }>,
): Promise<void> {
  const account = await context.users.load((await holder).userId);
  if (!account || !isActive(account)) throw AppError.unusableToken();
}

/** Email verification and password reset: single-use tokens that the auth service mails. */
export function createEmailResolvers(
  { users, auth }: Pick<IdentityClients, 'users' | 'auth'>,
  throttle: AddressThrottle,
) {
  return {
    Mutation: {
      async requestEmailVerification(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { user } = await users.getUser({ id: viewer.userId });
        if (!user) throw AppError.notFound('User');
        if (user.emailVerified) return true;
        await auth.requestEmailVerification({ userId: user.id, email: user.email });
        return true;
      },

      async verifyEmail(_: unknown, { token }: { token: string }, context: UsersContext) {
        // The link of an account disabled (or removed) since it was mailed verifies nothing,
        // even one mailed as the account was being disabled (the disable uses up only the
        // links mailed before it): refused as a token that cannot be used, as for a reset.
        await requireActiveHolder(context, auth.verificationTokenHolder({ token }));
        const { userId } = await auth.verifyEmail({ token });
        const { user } = await users.updateUser({ id: userId, emailVerified: true, status: 0 });
        return user;
      },

      async requestPasswordReset(_: unknown, { email }: { email: string }, context: UsersContext) {
        await throttle.checkAddress(context.clientAddress);
        // Unknown (or malformed) address: the same answer, after the same calls, as for a real
        // one. The auth service only records the request; the mail goes out later, if at all.
        // A disabled account is answered alike, and gets no mail.
        const found = await findUserByEmail(users, email);
        const user = found && isActive(found) ? found : undefined;
        await auth.requestPasswordReset({ userId: user?.id ?? '', email: user?.email ?? '' });
        return true;
      },

      async resetPassword(
        _: unknown,
        args: { token: string; newPassword: string },
        context: UsersContext,
      ) {
        const newPassword = validatePassword(args.newPassword, 'newPassword');
        // The token of an account disabled (or removed) since it was mailed sets no password:
        // refused as a token that cannot be used, telling nothing more.
        await requireActiveHolder(context, auth.resetTokenHolder({ token: args.token }));
        await auth.resetPassword({ token: args.token, newPassword });
        return true;
      },
    },
  };
}
