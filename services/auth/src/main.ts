import { bindService } from '@platform/grpc';
import { createLifecycle } from '@platform/lifecycle';
import { createLogger } from '@platform/logger';
import { openServiceInfrastructure, serveGrpc } from '@platform/service-runtime';
import { createMailer } from '@platform/mail';
import { authV1 } from '@platform/proto';
import { createSessionRevocations, createTokenSigner } from '@platform/tokens';
import { startAuthConsumers } from './auth.consumers';
import { createAuthHandlers } from './auth.grpc';
import { AUTH_SCHEMA, createAuthTransactions } from './auth.transactions';
import { createCredentialRepository } from './credential.repository';
import { createCredentialService } from './credential.service';
import { env, oidcProviders } from './environment';
import { createGuessRepository } from './guess.repository';
import { mfaKeysOf } from './mfa.config';
import { createMfaRepository } from './mfa.repository';
import { createMfaService } from './mfa.service';
import { createOidcClient } from './oidc.client';
import { createLinkedAccountRepository, createOidcStateRepository } from './oidc.repository';
import { createOidcService } from './oidc.service';
import { createOneTimeTokenRepository } from './one-time-token.repository';
import { createOneTimeTokenService } from './one-time-token.service';
import { newSuccessorKey } from './opaque-token';
import { createPasswordGuard } from './password-guard';
import { createPasswordHasher } from './password.hasher';
import { relyingPartyOf } from './passkey.config';
import { createPasskeyChallengeRepository, createPasskeyRepository } from './passkey.repository';
import { createPasskeyService } from './passkey.service';
import { createRevocationRestorer, startRevocationSweep } from './revocation.restorer';
import { createSecretBox } from './secret-box';
import { createSessionRepository } from './session.repository';
import { createSessionService, revocationTtlSeconds } from './session.service';
import { createSigningKeyRepository } from './signing-key.repository';
import { createSigningKeyService } from './signing-key.service';

const logger = createLogger({ name: 'auth-service', level: env.LOG_LEVEL });
const lifecycle = createLifecycle({ logger, drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS });

lifecycle.run(async () => {
  const { db, redis, broker, relay } = await openServiceInfrastructure({
    env,
    schema: AUTH_SCHEMA,
    logger,
    lifecycle,
  });
  const transactions = createAuthTransactions(db, relay);

  const mailer = createMailer({
    smtpUrl: env.SMTP_URL,
    from: env.MAIL_FROM,
    logBodies: env.MAIL_LOG_BODIES,
    logger,
  });
  lifecycle.onShutdown('mailer', () => mailer.close());

  const signingKeys = createSigningKeyService({
    signingKeys: createSigningKeyRepository(db),
    transactions,
  });
  const activeKey = await signingKeys.ensureActiveKey(
    env.SIGNING_KEY_MAX_AGE_DAYS * 24 * 3600 * 1000,
  );
  logger.info({ kid: activeKey.kid }, 'signing key ready');

  const sessionRepository = createSessionRepository(db);
  // Redis holds a copy of the ended sessions; after it lost it, rebuilt from the database
  // (here at start, and whenever a verifier asks through RestoreRevocations).
  const revocationCopy = createSessionRevocations(redis, {
    rebuild: () => revocations.restore(),
  });
  const revocations = createRevocationRestorer({
    sessions: sessionRepository,
    revocations: revocationCopy,
    entryTtlSeconds: revocationTtlSeconds(env.ACCESS_TOKEN_TTL),
  });
  if (await revocations.restoreIfLost()) logger.warn('ended sessions rebuilt in Redis');
  const sessions = createSessionService({
    sessions: sessionRepository,
    transactions,
    signer: createTokenSigner({
      issuer: env.TOKEN_ISSUER,
      audience: env.TOKEN_AUDIENCE,
      ttlSeconds: env.ACCESS_TOKEN_TTL,
      key: activeKey,
    }),
    revocations: revocationCopy,
    logger,
    policy: {
      idleTtlSeconds: env.SESSION_IDLE_TTL,
      absoluteTtlSeconds: env.SESSION_ABSOLUTE_TTL,
      reuseGraceSeconds: env.REFRESH_REUSE_GRACE_SECONDS,
      maxActiveSessions: env.MAX_SESSIONS_PER_USER,
    },
    // Kept in the database like the signing keys: every instance derives with the same key.
    successorKey: await sessionRepository.ensureSuccessorKey(newSuccessorKey()),
  });
  // A revocation whose Redis write timed out but landed is finished in the database.
  const stopSweep = startRevocationSweep({ revocations: revocationCopy, sessions, logger });
  lifecycle.onShutdown('revocation sweep', async () => stopSweep());
  // Sliding windows in Redis: password guesses and mails per account.
  const guesses = createGuessRepository(redis);
  const oneTimeTokens = createOneTimeTokenService({
    tokens: createOneTimeTokenRepository(db),
    transactions,
    mailer,
    logger,
    windows: guesses,
    mailsPerHour: env.ONE_TIME_MAILS_PER_HOUR,
  });
  // One guard for every proof of identity: passwords and second-factor codes share its limits.
  const guard = createPasswordGuard({
    guesses,
    policy: {
      perClient: env.PASSWORD_GUESSES_PER_CLIENT,
      perClientWindowSeconds: env.PASSWORD_GUESSES_PER_CLIENT_WINDOW,
      perAccount: env.PASSWORD_GUESSES_PER_ACCOUNT,
      perAccountWindowSeconds: env.PASSWORD_GUESSES_PER_ACCOUNT_WINDOW,
      deviceTokenTtlSeconds: env.DEVICE_TOKEN_TTL,
    },
    logger,
  });
  const credentialRepository = createCredentialRepository(db);
  const passwords = await createPasswordHasher();
  const passkeyRepository = createPasskeyRepository(db);
  const mfa = createMfaService({
    repository: createMfaRepository(db),
    box: createSecretBox(mfaKeysOf(env)),
    guard,
    sessions,
    transactions,
    credentials: credentialRepository,
    passwords,
    policy: {
      issuer: env.MFA_TOTP_ISSUER,
      challengeTtlSeconds: env.MFA_CHALLENGE_TTL,
      reauthWindowSeconds: env.REAUTH_WINDOW_SECONDS,
    },
    hasPasskey: async (userId) => (await passkeyRepository.countByUser([userId])).size > 0,
  });
  if (!env.MFA_ENCRYPTION_KEYS)
    logger.warn('MFA_ENCRYPTION_KEYS is unset: TOTP secrets are sealed with the development key');
  const linkedAccounts = createLinkedAccountRepository(db);
  const passkeys = createPasskeyService({
    passkeys: passkeyRepository,
    challenges: createPasskeyChallengeRepository(redis),
    mfa,
    guard,
    sessions,
    transactions,
    policy: {
      relyingParty: relyingPartyOf(env),
      challengeTtlSeconds: env.WEBAUTHN_CHALLENGE_TTL,
    },
    canStillSignIn: (tx, userId) => linkedAccounts.canSignIn(tx, userId),
  });
  if (!env.WEBAUTHN_RP_ID)
    logger.warn('WEBAUTHN_RP_ID is unset: passkeys are bound to localhost (development only)');
  // External OpenID Connect providers: discovery runs on first use and again after a failure,
  // so a provider that is down answers SERVICE_UNAVAILABLE and never stops the service.
  const oidc = createOidcService({
    providers: oidcProviders,
    oidc: createOidcClient({ logger, allowHttp: env.NODE_ENV !== 'production' }),
    states: createOidcStateRepository(redis),
    links: linkedAccounts,
    mfa,
    guard,
    sessions,
    transactions,
    policy: { stateTtlSeconds: env.OIDC_STATE_TTL, linkTtlSeconds: env.OIDC_LINK_TTL },
  });
  if (oidcProviders.length > 0)
    logger.info({ providers: oidc.providers() }, 'OpenID Connect providers configured');
  const credentials = createCredentialService({
    credentials: credentialRepository,
    passwords,
    sessions,
    oneTimeTokens,
    transactions,
    guard,
    mfa,
  });

  // Reset mails go out after the request was answered (docs/security.md, account enumeration).
  // A disabled account's sessions end from its status event too (auth.consumers.ts).
  await startAuthConsumers({
    broker,
    oneTimeTokens,
    credentials,
    logger,
    queuePrefix: env.EVENTS_EXCHANGE,
  });

  await serveGrpc({
    env,
    logger,
    lifecycle,
    service: bindService({
      name: 'auth.v1.AuthService',
      definition: authV1.AuthServiceService,
      handlers: createAuthHandlers({
        sessions,
        credentials,
        oneTimeTokens,
        signingKeys,
        revocations,
        mfa,
        passkeys,
        oidc,
      }),
    }),
  });
});
