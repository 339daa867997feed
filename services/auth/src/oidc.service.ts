import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import { isUuid, normalizeEmail } from '@platform/validation';
import { timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import type { AuthTransactions, AuthTx } from './auth.transactions';
import { accountOf, type IssuedChallenge, type MfaService } from './mfa.service';
import type { OidcClient, OidcIdentity } from './oidc.client';
import type { OidcProviderConfig } from './oidc.config';
import type {
  LinkedAccountRepository,
  LinkedAccountRow,
  OidcStateRepository,
} from './oidc.repository';
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from './opaque-token';
import type { GuessingClient, PasswordGuard } from './password-guard';
import type { SessionService, SessionTokens } from './session.service';

/** What a user sees of a linked identity (never the subject). */
export interface LinkedAccountView {
  id: string;
  provider: string;
  email: string;
  createdAt: Date;
}

/** How a completed provider sign-in ends. */
export type OidcCompletion =
  | { kind: 'signed-in'; userId: string; tokens: SessionTokens; deviceToken: string }
  /** A linked user with a second factor: the same challenge a right password earns. */
  | { kind: 'mfa'; userId: string; challenge: IssuedChallenge }
  /**
   * Nobody has linked this identity and the provider verified its email: the caller creates an
   * account for it (no account has the email) or asks the account that has it to prove itself.
   */
  | {
      kind: 'unlinked';
      linkToken: string;
      provider: string;
      email: string;
      name: string;
      expiresAt: Date;
    };

export interface OidcPolicy {
  /** Seconds a begun sign-in stays usable. */
  stateTtlSeconds: number;
  /** Seconds an unlinked identity's link token stays usable. */
  linkTtlSeconds: number;
}

/** Sign-in with external OpenID Connect providers, and linked accounts (docs/identity.md). */
export interface OidcService {
  /** The configured providers' names. */
  providers(): string[];
  /**
   * The provider's authorization URL for this redirect URI (which must be on its allow-list),
   * with a fresh state, nonce and PKCE verifier kept server-side.
   */
  begin(
    provider: string,
    redirectUri: string,
  ): Promise<{ url: string; state: string; binding: string; expiresAt: Date }>;
  /**
   * Redeems a callback: its state once (GETDEL), for the provider and redirect URI it was issued
   * for; the ID token validated by the library. Failures are UNAUTHENTICATED and count against
   * the address's guess limit for this provider; an unverified email of an unlinked identity is
   * refused (reason EMAIL_NOT_VERIFIED) and nothing is created or linked.
   */
  complete(
    provider: string,
    code: string,
    state: string,
    binding: string,
    userAgent: string | undefined,
    client: GuessingClient,
  ): Promise<OidcCompletion>;
  /**
   * Links the identity to an account just made for it and opens the first session. Refused
   * (CONFLICT) for a user who already has a way to sign in: this never links an existing account.
   */
  createAccount(
    linkToken: string,
    userId: string,
    userEmail: string,
    userAgent: string | undefined,
  ): Promise<SessionTokens>;
  /**
   * Links the identity to the signed-in user, who proved themself (a recent sign-in or
   * re-authentication) and whose email the provider verified. Emits oidc_linked.
   */
  link(
    userId: string,
    sessionId: string,
    userEmail: string,
    linkToken: string,
  ): Promise<LinkedAccountView>;
  list(userId: string): Promise<LinkedAccountView[]>;
  /**
   * Needs recent authentication; NOT_FOUND if not theirs; CONFLICT (reason
   * LAST_SIGN_IN_METHOD) when no password, passkey or other linked account would be left.
   */
  unlink(userId: string, sessionId: string, linkedAccountId: string): Promise<void>;
}

export interface OidcServiceDeps {
  providers: readonly OidcProviderConfig[];
  oidc: OidcClient;
  states: OidcStateRepository;
  links: LinkedAccountRepository;
  mfa: Pick<MfaService, 'challengeFor' | 'requireRecent' | 'requireLiveWithin' | 'wayInRemoved'>;
  guard: PasswordGuard;
  sessions: Pick<SessionService, 'open'>;
  transactions: AuthTransactions;
  policy: OidcPolicy;
  clock?: () => Date;
}

const MAX_CODE_LENGTH = 2048;

const sameHash = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
const MAX_REDIRECT_URI_LENGTH = 2048;

const viewOf = (row: LinkedAccountRow): LinkedAccountView => ({
  id: row.id,
  provider: row.provider,
  email: row.email,
  createdAt: row.createdAt,
});

const signInFailed = (provider: string) =>
  AppError.unauthenticated(`Sign-in with ${provider} failed; begin again`);
const badLinkToken = () =>
  AppError.badInput('linkToken', 'is unknown, used or expired; sign in with the provider again');

/** The guard's name for tries at one provider from one address (no account is known yet). */
const guessesAt = (provider: string, address: string | undefined) =>
  `oidc:${provider}:${address ?? ''}`;

export function createOidcService(deps: OidcServiceDeps): OidcService {
  const { oidc, states, links, mfa, guard, sessions, transactions, policy } = deps;
  const clock = deps.clock ?? (() => new Date());
  const byName = new Map(deps.providers.map((provider) => [provider.name, provider]));

  function providerOf(name: string, field = 'provider'): OidcProviderConfig {
    const provider = byName.get(name);
    if (!provider) throw AppError.badInput(field, 'is not a configured sign-in provider');
    return provider;
  }

  /** Redeems the callback; null for any failure a client could cause (counted as a wrong guess). */
  async function redeem(
    provider: OidcProviderConfig,
    code: string,
    state: string,
    binding: string,
  ) {
    if (!code || code.length > MAX_CODE_LENGTH) return null;
    // Taken before anything else is checked: a state is good for exactly one try.
    const flow = await states.takeFlow(state);
    if (flow?.provider !== provider.name) return null;
    // The state travels in URLs (history, Referer, logs); the binding stayed in the browser that
    // began the flow. Without it, a code and state are worth nothing elsewhere (login CSRF, a
    // leaked callback URL).
    if (!isOpaqueToken(binding) || !sameHash(flow.bindingHash, hashOpaqueToken(binding)))
      return null;
    try {
      const { redirectUri, codeVerifier, nonce } = flow;
      return await oidc.redeem(provider, { redirectUri, codeVerifier, nonce, code, state });
    } catch (error) {
      if (error instanceof AppError && error.code === 'UNAUTHENTICATED') return null;
      throw error;
    }
  }

  const takePending = (linkToken: string) =>
    isOpaqueToken(linkToken) ? states.takePending(hashOpaqueToken(linkToken)) : null;

  return {
    providers() {
      return [...byName.keys()];
    },

    async begin(name, redirectUri) {
      const provider = providerOf(name);
      // Exact match against the allow-list: a code is only ever sent where we said.
      if (
        redirectUri.length > MAX_REDIRECT_URI_LENGTH ||
        !provider.redirectUris.includes(redirectUri)
      )
        throw AppError.badInput('redirectUri', 'is not an allowed redirect URI for this provider');
      const state = client.randomState();
      const nonce = client.randomNonce();
      const codeVerifier = client.randomPKCECodeVerifier();
      const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
      const url = await oidc.authorizationUrl(provider, {
        redirectUri,
        state,
        nonce,
        codeChallenge,
      });
      const binding = newOpaqueToken();
      await states.saveFlow(
        state,
        { provider: provider.name, redirectUri, codeVerifier, nonce, bindingHash: binding.hash },
        policy.stateTtlSeconds,
      );
      return {
        url,
        state,
        binding: binding.token,
        expiresAt: new Date(clock().getTime() + policy.stateTtlSeconds * 1000),
      };
    },

    async complete(name, code, state, binding, userAgent, guessing) {
      const provider = providerOf(name);
      const outcome: { identity: OidcIdentity | null } = { identity: null };
      const redeemed = await guard.check(
        guessesAt(provider.name, guessing.address),
        { address: guessing.address },
        async () => {
          outcome.identity = await redeem(provider, code, state, binding);
          return outcome.identity !== null;
        },
      );
      if (!redeemed || !outcome.identity) throw signInFailed(provider.name);
      const { subject, email, emailVerified, name: displayName } = outcome.identity;

      const linked = await links.findBySubject(provider.name, subject);
      if (linked) {
        // Keyed by (provider, subject) alone: what the provider now says the email is changes nothing.
        // What the sign-in creates (its challenge or session) commits under the user's lock, if
        // the link is still there: an unlink or a deletion that committed since it was read
        // refuses the sign-in, and one that comes after ends what it created with the rest.
        const stillLinked = async (tx: AuthTx) => {
          if (!(await links.stillLinked(tx, linked.userId, linked.id)))
            throw signInFailed(provider.name);
        };
        const challenge = await mfa.challengeFor(
          linked.userId,
          userAgent,
          guessing.deviceToken,
          stillLinked,
        );
        if (challenge) return { kind: 'mfa', userId: linked.userId, challenge };
        const deviceToken = await guard.deviceTokenFor(
          accountOf(linked.userId),
          guessing.deviceToken,
        );
        return {
          kind: 'signed-in',
          userId: linked.userId,
          tokens: await sessions.open(linked.userId, userAgent, stillLinked),
          deviceToken,
        };
      }
      // An email the provider does not vouch for names nobody: no account is made or linked by it.
      if (!email || !emailVerified)
        throw new AppError(
          'UNAUTHENTICATED',
          `${provider.name} did not confirm that this email address is verified; verify it there and sign in again`,
          { reason: 'EMAIL_NOT_VERIFIED' },
        );
      // Redis keeps only the token's hash: a copy of its keys links nothing.
      const { token, hash } = newOpaqueToken();
      await states.savePending(
        hash,
        { provider: provider.name, subject, email: normalizeEmail(email), name: displayName ?? '' },
        policy.linkTtlSeconds,
      );
      return {
        kind: 'unlinked',
        linkToken: token,
        provider: provider.name,
        email: normalizeEmail(email),
        name: displayName ?? '',
        expiresAt: new Date(clock().getTime() + policy.linkTtlSeconds * 1000),
      };
    },

    async createAccount(linkToken, userId, userEmail, userAgent) {
      if (!isUuid(userId)) throw AppError.badInput('userId', 'is not a user id');
      const pending = await takePending(linkToken);
      if (!pending || pending.email !== normalizeEmail(userEmail)) throw badLinkToken();
      const linked = await transactions.run(async (tx) => {
        // Only an account with no way in yet: this is never how an existing account gets linked.
        if (
          (await links.hasOtherMethod(tx.client, userId)) ||
          (await links.lockByUser(tx.client, userId)).length > 0
        )
          throw AppError.conflict('This account exists already; sign in to it and link there');
        const row = await links.create(tx.client, {
          userId,
          provider: pending.provider,
          subject: pending.subject,
          email: pending.email,
        });
        if (!row) throw AppError.conflict('This account at the provider is linked already');
        return row;
      });
      // Under the user's lock, if the link is still there: a deletion that committed in between
      // leaves no session on the deleted account.
      return sessions.open(userId, userAgent, async (tx) => {
        if (!(await links.stillLinked(tx, userId, linked.id))) throw AppError.notFound('User');
      });
    },

    async link(userId, sessionId, userEmail, linkToken) {
      await mfa.requireRecent(userId, sessionId);
      const pending = await takePending(linkToken);
      // Bound to the account whose email the provider verified: a link token lured into another
      // user's session links nothing.
      if (!pending || pending.email !== normalizeEmail(userEmail)) throw badLinkToken();
      const row = await transactions.run(async (tx) => {
        // A deletion (or a sign-out everywhere) that committed since the check above leaves
        // nothing to link to.
        await mfa.requireLiveWithin(tx.client, userId, sessionId);
        const created = await links.create(tx.client, {
          userId,
          provider: pending.provider,
          subject: pending.subject,
          email: pending.email,
        });
        if (!created) throw AppError.conflict('This account at the provider is linked already');
        await tx.emit(createEvent('auth.mfa_changed', { userId, change: 'oidc_linked' }));
        return created;
      });
      return viewOf(row);
    },

    async list(userId) {
      return (await links.listByUser(userId)).map(viewOf);
    },

    async unlink(userId, sessionId, linkedAccountId) {
      await mfa.requireRecent(userId, sessionId);
      if (!isUuid(linkedAccountId)) throw AppError.notFound('Linked account');
      await transactions.run(async (tx) => {
        const own = await links.lockByUser(tx.client, userId);
        if (!own.some((row) => row.id === linkedAccountId))
          throw AppError.notFound('Linked account');
        if (own.length === 1 && !(await links.hasOtherMethod(tx.client, userId)))
          throw new AppError(
            'CONFLICT',
            'This is your only way to sign in; set a password or add a passkey first',
            { reason: 'LAST_SIGN_IN_METHOD' },
          );
        await links.remove(tx.client, userId, linkedAccountId);
        await mfa.wayInRemoved(tx, userId, sessionId);
        await tx.emit(createEvent('auth.mfa_changed', { userId, change: 'oidc_unlinked' }));
      });
    },
  };
}
