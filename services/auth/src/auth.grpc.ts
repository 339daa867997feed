import { SESSION_REVOCATION_REASONS } from '@platform/events';
import type { UnaryHandlers } from '@platform/grpc';
import type { authV1 } from '@platform/proto';
import { requireId } from '@platform/validation';
import type { CredentialService } from './credential.service';
import type { MfaService } from './mfa.service';
import type { LinkedAccountView, OidcService } from './oidc.service';
import type { OneTimeTokenService } from './one-time-token.service';
import { isOpaqueToken } from './opaque-token';
import type { PasskeyService, PasskeyView } from './passkey.service';
import type { RevocationRestorer } from './revocation.restorer';
import type { SessionService } from './session.service';
import type { SigningKeyService } from './signing-key.service';

export interface AuthUseCases {
  sessions: SessionService;
  credentials: CredentialService;
  oneTimeTokens: OneTimeTokenService;
  signingKeys: SigningKeyService;
  revocations: RevocationRestorer;
  mfa: MfaService;
  passkeys: PasskeyService;
  oidc: OidcService;
}

const requireUserId = (userId: string) => requireId('userId', userId, 'user');
/** Proto3 sends an unset string as ''. */
const optional = (value: string) => value || undefined;

/**
 * A device token as sent by a client: only something shaped like one this service issued is
 * looked up, kept with a challenge or passed on; anything else (oversized, malformed) is as if
 * none was sent.
 */
const presentedDeviceToken = (value: string) => (isOpaqueToken(value) ? value : undefined);

const linkedAccountOf = (view: LinkedAccountView): authV1.LinkedAccount => ({ ...view });

const passkeyOf = (view: PasskeyView): authV1.Passkey => ({
  ...view,
  lastUsedAt: view.lastUsedAt ?? undefined,
});

/** The AuthService gRPC API: requests to use cases and their answers back. */
export function createAuthHandlers(
  useCases: AuthUseCases,
): UnaryHandlers<typeof authV1.AuthServiceService> {
  const { sessions, credentials, oneTimeTokens, signingKeys, revocations, mfa, passkeys, oidc } =
    useCases;

  return {
    async getJwks() {
      return { keys: await signingKeys.publishedKeys() };
    },

    async restoreRevocations() {
      return { restored: await revocations.restore() };
    },

    async createCredential(request) {
      const userId = requireUserId(request.userId);
      const userAgent = optional(request.userAgent);
      return { tokens: await credentials.create(userId, request.password, userAgent) };
    },

    async deleteCredential(request, context) {
      await credentials.delete(requireUserId(request.userId), {
        actorId: context.userId,
        currentPassword: optional(request.currentPassword),
        sessionId: optional(request.sessionId),
        client: { address: optional(request.clientAddress) },
      });
      return {};
    },

    async login(request) {
      const signIn = await credentials.login({
        userId: optional(request.userId),
        email: request.email,
        password: request.password,
        userAgent: optional(request.userAgent),
        client: {
          address: optional(request.clientAddress),
          deviceToken: presentedDeviceToken(request.deviceToken),
        },
        mfaCode: optional(request.mfaCode),
      });
      return signIn.mfaChallenge
        ? { tokens: undefined, deviceToken: '', mfaChallenge: signIn.mfaChallenge }
        : { tokens: signIn.tokens, deviceToken: signIn.deviceToken, mfaChallenge: undefined };
    },

    async refreshSession(request) {
      const userAgent = optional(request.userAgent);
      return { tokens: await sessions.refresh(request.refreshToken, userAgent) };
    },

    async listSessions(request) {
      const active = await sessions.listActive(requireUserId(request.userId));
      return {
        sessions: active.map((session) => ({
          id: session.id,
          createdAt: session.createdAt,
          lastUsedAt: session.lastUsedAt,
          userAgent: session.userAgent ?? '',
        })),
      };
    },

    async revokeSession(request) {
      await sessions.revoke(requireUserId(request.userId), request.sessionId);
      return {};
    },

    async revokeAllSessions(request) {
      const userId = requireUserId(request.userId);
      const reason =
        SESSION_REVOCATION_REASONS.find((known) => known === request.reason) ?? 'logout_all';
      const except = optional(request.exceptSessionId);
      return { revoked: await sessions.revokeAll(userId, reason, except) };
    },

    async lockOutUser(request) {
      return { revoked: await credentials.lockOut(requireUserId(request.userId)) };
    },

    async requestEmailVerification(request) {
      await oneTimeTokens.send('VERIFY_EMAIL', requireUserId(request.userId), request.email);
      return {};
    },

    async verifyEmail(request) {
      return { userId: await oneTimeTokens.consume('VERIFY_EMAIL', request.token) };
    },

    async requestPasswordReset(request) {
      // No user id: no account has the address typed. Answered the same way, as fast.
      const userId = optional(request.userId);
      await oneTimeTokens.requestReset(
        userId ? { userId: requireUserId(userId), email: request.email } : undefined,
      );
      return {};
    },

    async verificationTokenHolder(request) {
      return { userId: await oneTimeTokens.holderOf('VERIFY_EMAIL', request.token) };
    },

    async resetTokenHolder(request) {
      return { userId: await oneTimeTokens.holderOf('RESET_PASSWORD', request.token) };
    },

    async resetPassword(request) {
      return { userId: await credentials.resetPassword(request.token, request.newPassword) };
    },

    async changePassword(request) {
      await credentials.changePassword(requireUserId(request.userId), {
        currentPassword: request.currentPassword,
        newPassword: request.newPassword,
        keepSessionId: optional(request.sessionId),
        client: { address: optional(request.clientAddress) },
      });
      return {};
    },

    async verifyMfa(request) {
      return mfa.verify(request.challenge, request.code, {
        address: optional(request.clientAddress),
      });
    },

    async reauthenticate(request) {
      const recentUntil = await mfa.reauthenticate(
        requireUserId(request.userId),
        request.sessionId,
        { password: optional(request.password), code: optional(request.code) },
        { address: optional(request.clientAddress) },
      );
      return { recentUntil };
    },

    async beginTotpEnrollment(request) {
      const { secret, uri } = await mfa.beginTotp(
        requireUserId(request.userId),
        request.sessionId,
        request.accountName,
      );
      return { secret, otpauthUri: uri };
    },

    async confirmTotpEnrollment(request) {
      const recoveryCodes = await mfa.confirmTotp(
        requireUserId(request.userId),
        request.sessionId,
        request.code,
        { address: optional(request.clientAddress) },
      );
      return { recoveryCodes };
    },

    async disableTotp(request) {
      await mfa.disableTotp(requireUserId(request.userId), request.sessionId);
      return {};
    },

    async regenerateRecoveryCodes(request) {
      const recoveryCodes = await mfa.regenerateRecoveryCodes(
        requireUserId(request.userId),
        request.sessionId,
      );
      return { recoveryCodes };
    },

    async getMfaStatus(request) {
      // The versions first: a change committing meanwhile shows in the factors read after, so the
      // state answered is never older than the version answered with it.
      const versions = await mfa.stateVersions(request.userIds);
      const [statuses, counts] = await Promise.all([
        mfa.status(request.userIds),
        passkeys.countByUser(request.userIds),
      ]);
      const merged = statuses.map((status) => ({
        ...status,
        passkeys: counts.get(status.userId) ?? 0,
      }));
      for (const [userId, count] of counts)
        if (!statuses.some((status) => status.userId === userId))
          merged.push({ userId, totpEnabled: false, recoveryCodesLeft: 0, passkeys: count });
      return { statuses: merged, stateVersions: Object.fromEntries(versions) };
    },

    async beginPasskeyRegistration(request) {
      const optionsJson = await passkeys.beginRegistration(
        requireUserId(request.userId),
        request.sessionId,
        request.userName,
      );
      return { optionsJson };
    },

    async finishPasskeyRegistration(request) {
      const view = await passkeys.finishRegistration(
        requireUserId(request.userId),
        request.sessionId,
        request.responseJson,
        optional(request.name),
      );
      return { passkey: passkeyOf(view) };
    },

    async beginPasskeyLogin(request) {
      return { optionsJson: await passkeys.beginLogin(optional(request.mfaChallenge)) };
    },

    async finishPasskeyLogin(request) {
      return passkeys.finishLogin(request.responseJson, optional(request.userAgent), {
        address: optional(request.clientAddress),
        deviceToken: presentedDeviceToken(request.deviceToken),
      });
    },

    async beginPasskeyReauthentication(request) {
      const optionsJson = await passkeys.beginReauthentication(
        requireUserId(request.userId),
        request.sessionId,
      );
      return { optionsJson };
    },

    async reauthenticateWithPasskey(request) {
      const recentUntil = await passkeys.reauthenticate(
        requireUserId(request.userId),
        request.sessionId,
        request.responseJson,
        { address: optional(request.clientAddress) },
      );
      return { recentUntil };
    },

    async listPasskeys(request) {
      const views = await passkeys.list(requireUserId(request.userId));
      return { passkeys: views.map(passkeyOf) };
    },

    async removePasskey(request) {
      await passkeys.remove(requireUserId(request.userId), request.sessionId, request.passkeyId);
      return {};
    },

    async listOidcProviders() {
      return { names: oidc.providers() };
    },

    async beginOidcLogin(request) {
      const begun = await oidc.begin(request.provider, request.redirectUri);
      return {
        authorizationUrl: begun.url,
        state: begun.state,
        binding: begun.binding,
        expiresAt: begun.expiresAt,
      };
    },

    async completeOidcLogin(request) {
      const completion = await oidc.complete(
        request.provider,
        request.code,
        request.state,
        request.binding,
        optional(request.userAgent),
        {
          address: optional(request.clientAddress),
          deviceToken: presentedDeviceToken(request.deviceToken),
        },
      );
      const none = {
        tokens: undefined,
        deviceToken: '',
        mfaChallenge: undefined,
        unlinked: undefined,
      };
      switch (completion.kind) {
        case 'signed-in':
          return {
            ...none,
            tokens: completion.tokens,
            deviceToken: completion.deviceToken,
            userId: completion.userId,
          };
        case 'mfa':
          return { ...none, mfaChallenge: completion.challenge, userId: completion.userId };
        case 'unlinked': {
          const { kind: _, ...unlinked } = completion;
          return { ...none, unlinked, userId: '' };
        }
      }
    },

    async createOidcAccount(request) {
      const tokens = await oidc.createAccount(
        request.linkToken,
        requireUserId(request.userId),
        request.userEmail,
        optional(request.userAgent),
      );
      return { tokens };
    },

    async linkOidcAccount(request) {
      const view = await oidc.link(
        requireUserId(request.userId),
        request.sessionId,
        request.userEmail,
        request.linkToken,
      );
      return { account: linkedAccountOf(view) };
    },

    async listLinkedAccounts(request) {
      const views = await oidc.list(requireUserId(request.userId));
      return { accounts: views.map(linkedAccountOf) };
    },

    async unlinkAccount(request) {
      await oidc.unlink(requireUserId(request.userId), request.sessionId, request.linkedAccountId);
      return {};
    },
  };
}
