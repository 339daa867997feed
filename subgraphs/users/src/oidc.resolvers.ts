import { AppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { authV1 } from '@platform/proto';
import { requireViewer } from '@platform/subgraph';
import { validateEmail } from '@platform/validation';
import type { AddressThrottle } from './address.throttle';
import {
  activeSessionPayload,
  completeAccount,
  findUserByEmail,
  isActive,
  payload,
  type IdentityClients,
} from './auth.resolvers';
import { challengeOf } from './mfa.resolvers';
import type { UsersContext } from './users.resolvers';

/** A provider name is at most 32 characters; states, link tokens and ids are far shorter than 128. */
const MAX_PROVIDER_LENGTH = 32;
const MAX_TOKEN_LENGTH = 128;
const MAX_CODE_LENGTH = 2048;
const MAX_REDIRECT_URI_LENGTH = 2048;
const MAX_DISPLAY_NAME = 100;

const signInFailed = (provider: string) =>
  AppError.unauthenticated(`Sign-in with ${provider} failed; begin again`);

function requireProvider(provider: string): string {
  if (!provider || provider.length > MAX_PROVIDER_LENGTH)
    throw AppError.badInput('provider', 'is not a configured sign-in provider');
  return provider;
}

/** The new account's display name: the provider's `name`, else the email's local part. */
function displayNameOf(name: string, email: string): string {
  const trimmed = name.normalize('NFC').trim().slice(0, MAX_DISPLAY_NAME).trim();
  return trimmed || email.split('@')[0]?.slice(0, MAX_DISPLAY_NAME) || 'User';
}

const linkedAccountOf = (account: authV1.LinkedAccount) => ({
  id: account.id,
  provider: account.provider,
  email: account.email,
  createdAt: account.createdAt,
});

/**
 * Sign-in with external OpenID Connect providers and linked accounts (docs/identity.md, "OpenID
 * Connect"). The auth service keeps every rule (state, nonce, PKCE, ID token, linking only with
 * proof, the last way in); this checks sizes, names the caller, and orchestrates the account a
 * new verified identity gets, as register does.
 */
export function createOidcResolvers(
  clients: IdentityClients,
  throttle: AddressThrottle,
  logger: Logger,
) {
  const { users, auth } = clients;

  /** Tokens of a linked user, refused if the account is disabled or leaving. */
  async function signedIn(
    provider: string,
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
        () => signInFailed(provider),
        logger,
      )),
    };
  }

  /** An identity nobody linked: a new account for its email, or proof from the one that has it. */
  async function unlinkedAnswer(unlinked: authV1.UnlinkedIdentity, context: UsersContext) {
    const linkRequired = {
      __typename: 'OidcLinkRequired' as const,
      provider: unlinked.provider,
      email: unlinked.email,
      linkToken: unlinked.linkToken,
      expiresAt: unlinked.expiresAt,
    };
    // Never linked silently: the account that has this email must sign in and link.
    if (await findUserByEmail(users, unlinked.email)) return linkRequired;
    const email = validateEmail(unlinked.email);
    const created = await users
      .createUser({ email, displayName: displayNameOf(unlinked.name, email) })
      .catch((error: unknown) => {
        // Someone registered this email a moment ago: the same answer as if they had before.
        if (error instanceof AppError && error.code === 'CONFLICT') return null;
        throw error;
      });
    if (!created) return linkRequired;
    const { user } = created;
    if (!user) throw new Error('user service answered without a user');
    const tokens = await completeAccount(clients, logger, user, async () => {
      const answer = await auth.createOidcAccount({
        linkToken: unlinked.linkToken,
        userId: user.id,
        userEmail: user.email,
        userAgent: context.userAgent ?? '',
      });
      return answer.tokens;
    });
    return { __typename: 'AuthPayload' as const, ...payload(tokens, user) };
  }

  return {
    OidcSignInResult: {
      __resolveType: (result: { __typename: string }) => result.__typename,
    },
    Query: {
      async oidcProviders() {
        const { names } = await auth.listOidcProviders({});
        return names.map((name) => ({ name }));
      },

      async myLinkedAccounts(_: unknown, __: unknown, context: UsersContext) {
        const viewer = requireViewer(context);
        const { accounts } = await auth.listLinkedAccounts({ userId: viewer.userId });
        return accounts.map(linkedAccountOf);
      },
    },
    Mutation: {
      async oidcAuthorizationUrl(
        _: unknown,
        args: { provider: string; redirectUri: string },
        context: UsersContext,
      ) {
        // Every sign-in try needs a new state: counting these limits an address's tries.
        await throttle.checkAddress(context.clientAddress);
        if (args.redirectUri.length > MAX_REDIRECT_URI_LENGTH)
          throw AppError.badInput(
            'redirectUri',
            'is not an allowed redirect URI for this provider',
          );
        const begun = await auth.beginOidcLogin({
          provider: requireProvider(args.provider),
          redirectUri: args.redirectUri,
        });
        return {
          url: begun.authorizationUrl,
          state: begun.state,
          binding: begun.binding,
          expiresAt: begun.expiresAt,
        };
      },

      async completeOidcLogin(
        _: unknown,
        args: {
          provider: string;
          code: string;
          state: string;
          binding: string;
          deviceToken?: string | null;
        },
        context: UsersContext,
      ) {
        await throttle.checkAddress(context.clientAddress);
        const provider = requireProvider(args.provider);
        if (!args.code || args.code.length > MAX_CODE_LENGTH) throw signInFailed(provider);
        if (!args.state || args.state.length > MAX_TOKEN_LENGTH) throw signInFailed(provider);
        if (!args.binding || args.binding.length > MAX_TOKEN_LENGTH) throw signInFailed(provider);
        const deviceToken = args.deviceToken ?? '';
        const answer = await auth.completeOidcLogin({
          provider,
          code: args.code,
          state: args.state,
          binding: args.binding,
          userAgent: context.userAgent ?? '',
          clientAddress: context.clientAddress ?? '',
          deviceToken: deviceToken.length <= MAX_TOKEN_LENGTH ? deviceToken : '',
        });
        if (answer.tokens) return signedIn(provider, answer.tokens, answer.deviceToken, context);
        if (answer.mfaChallenge) {
          // A disabled account's identity earns no challenge either.
          const user = await context.users.load(answer.userId);
          if (!user || !isActive(user)) throw signInFailed(provider);
          return challengeOf(answer.mfaChallenge);
        }
        if (answer.unlinked) return unlinkedAnswer(answer.unlinked, context);
        throw new Error('CompleteOidcLogin answered nothing');
      },

      async linkOidcAccount(_: unknown, args: { linkToken: string }, context: UsersContext) {
        const viewer = requireViewer(context);
        if (!args.linkToken || args.linkToken.length > MAX_TOKEN_LENGTH)
          throw AppError.badInput('linkToken', 'is unknown, used or expired');
        const user = await context.users.load(viewer.userId);
        if (!user) throw AppError.unauthenticated();
        const { account } = await auth.linkOidcAccount({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          userEmail: user.email,
          linkToken: args.linkToken,
        });
        if (!account) throw new Error('LinkOidcAccount answered no account');
        return linkedAccountOf(account);
      },

      async unlinkAccount(_: unknown, args: { id: string }, context: UsersContext) {
        const viewer = requireViewer(context);
        if (!args.id || args.id.length > MAX_TOKEN_LENGTH)
          throw AppError.notFound('Linked account');
        await auth.unlinkAccount({
          userId: viewer.userId,
          sessionId: viewer.sessionId,
          linkedAccountId: args.id,
        });
        return true;
      },
    },
  };
}
