// The use cases wired the way main.ts wires them, for tests: over in-memory fakes (unit
// tests) or over the real repositories of a test world (integration tests). Mail, password
// hashing and token signing are faked in both: they are not what these tests are about.
import { createLogger } from '@platform/logger';
import type { SessionRevocations } from '@platform/tokens';
import type { AuthTransactions } from '../auth.transactions';
import { createCredentialRepository, type CredentialRepository } from '../credential.repository';
import { createCredentialService } from '../credential.service';
import { createGuessRepository, type GuessRepository } from '../guess.repository';
import { DEVELOPMENT_MFA_KEYS } from '../mfa.config';
import { createMfaRepository, type MfaRepository } from '../mfa.repository';
import { createMfaService, type MfaPolicy } from '../mfa.service';
import {
  createOneTimeTokenRepository,
  type OneTimeTokenRepository,
} from '../one-time-token.repository';
import { createOneTimeTokenService } from '../one-time-token.service';
import type { OidcClient } from '../oidc.client';
import type { OidcProviderConfig } from '../oidc.config';
import {
  createLinkedAccountRepository,
  createOidcStateRepository,
  type LinkedAccountRepository,
  type OidcStateRepository,
} from '../oidc.repository';
import { createOidcService } from '../oidc.service';
import { newSuccessorKey } from '../opaque-token';
import { createPasswordGuard, type GuessPolicy } from '../password-guard';
import type { RelyingParty } from '../passkey.config';
import {
  createPasskeyChallengeRepository,
  createPasskeyRepository,
  type PasskeyChallengeRepository,
  type PasskeyRepository,
} from '../passkey.repository';
import { createPasskeyService } from '../passkey.service';
import { createSecretBox, parseSecretKeys } from '../secret-box';
import { createSessionRepository, type SessionRepository } from '../session.repository';
import { createSessionService, type SessionPolicy } from '../session.service';
import { createSigningKeyRepository, type SigningKeyRepository } from '../signing-key.repository';
import { createSigningKeyService } from '../signing-key.service';
import {
  createFakeCredentialRepository,
  createFakeMailer,
  createFakeOneTimeTokenRepository,
  createFakePasswordHasher,
  createFakeRevocations,
  createFakeSessionRepository,
  createFakeSigningKeyRepository,
  createFakeTransactions,
  createTestClock,
  fakeSigner,
  type FakeMailer,
  type FakePasswordHasher,
  type TestClock,
} from './auth.fakes';
import type { AuthTestWorld } from './auth.test-world';
import { createFakeGuessRepository } from './guess.fakes';
import { createFakeMfaRepository } from './mfa.fakes';
import {
  createFakeLinkedAccountRepository,
  createFakeOidcClient,
  createFakeOidcStateRepository,
} from './oidc.fakes';
import { createFakePasskeyChallengeRepository, createFakePasskeyRepository } from './passkey.fakes';

const DEFAULT_POLICY: SessionPolicy = {
  idleTtlSeconds: 3600,
  absoluteTtlSeconds: 4 * 3600,
  reuseGraceSeconds: 10,
  maxActiveSessions: 50,
};

const DEFAULT_GUESS_POLICY: GuessPolicy = {
  perClient: 5,
  perClientWindowSeconds: 900,
  perAccount: 50,
  perAccountWindowSeconds: 3600,
  deviceTokenTtlSeconds: 3600,
};

/** One key for every wiring of a test file, as every instance of the service loads one. */
const TEST_SUCCESSOR_KEY = newSuccessorKey();

const DEFAULT_MFA_POLICY: MfaPolicy = {
  issuer: 'Platform',
  challengeTtlSeconds: 300,
  reauthWindowSeconds: 300,
};

/** The relying party the software authenticator of the tests signs for. */
export const TEST_RELYING_PARTY: RelyingParty = {
  id: 'localhost',
  name: 'Platform',
  origins: ['http://localhost:3000'],
};

export interface WiringOptions {
  policy?: Partial<SessionPolicy>;
  mfaPolicy?: Partial<MfaPolicy>;
  guessPolicy?: Partial<GuessPolicy>;
  mailsPerHour?: number;
  clock?: TestClock;
  /** The OpenID Connect providers and the protocol client (a fake one over fakes). */
  oidc?: { providers: OidcProviderConfig[]; client?: OidcClient };
}

/** The provider the fake OIDC client plays. */
export const TEST_OIDC_PROVIDER: OidcProviderConfig = {
  name: 'idp',
  issuer: 'https://idp.example.com',
  clientId: 'platform',
  clientSecret: 'secret',
  scopes: ['openid', 'email', 'profile'],
  redirectUris: ['http://localhost:3000/callback'],
};

interface Parts {
  transactions: AuthTransactions;
  revocations: Pick<SessionRevocations, 'revoke'>;
  sessions: SessionRepository;
  credentials: CredentialRepository;
  oneTimeTokens: OneTimeTokenRepository;
  signingKeys: SigningKeyRepository;
  guesses: GuessRepository;
  mfa: MfaRepository;
  passkeys: PasskeyRepository;
  passkeyChallenges: PasskeyChallengeRepository;
  links: LinkedAccountRepository;
  oidcStates: OidcStateRepository;
  oidcClient: OidcClient;
  passwords: FakePasswordHasher;
  mailer: FakeMailer;
  clock: TestClock;
}

function wire(parts: Parts, options: WiringOptions) {
  const { transactions, clock, mailer } = parts;
  const logger = createLogger({ name: 'auth-test', level: 'silent' });
  const sessions = createSessionService({
    sessions: parts.sessions,
    transactions,
    signer: fakeSigner,
    revocations: parts.revocations,
    policy: { ...DEFAULT_POLICY, ...options.policy },
    successorKey: TEST_SUCCESSOR_KEY,
    clock: clock.now,
    logger,
    afterCommitRetryMs: [1, 1],
  });
  const oneTimeTokens = createOneTimeTokenService({
    tokens: parts.oneTimeTokens,
    transactions,
    mailer,
    logger,
    windows: parts.guesses,
    mailsPerHour: options.mailsPerHour ?? 5,
    clock: clock.now,
  });
  const guard = createPasswordGuard({
    guesses: parts.guesses,
    policy: { ...DEFAULT_GUESS_POLICY, ...options.guessPolicy },
    logger,
    clock: clock.now,
  });
  const mfa = createMfaService({
    repository: parts.mfa,
    box: createSecretBox(parseSecretKeys(DEVELOPMENT_MFA_KEYS)),
    guard,
    sessions,
    transactions,
    credentials: parts.credentials,
    passwords: parts.passwords,
    policy: { ...DEFAULT_MFA_POLICY, ...options.mfaPolicy },
    hasPasskey: async (userId) => (await parts.passkeys.countByUser([userId])).size > 0,
    clock: clock.now,
  });
  const passkeys = createPasskeyService({
    passkeys: parts.passkeys,
    challenges: parts.passkeyChallenges,
    mfa,
    guard,
    sessions,
    transactions,
    policy: { relyingParty: TEST_RELYING_PARTY, challengeTtlSeconds: 120 },
    canStillSignIn: (tx, userId) => parts.links.canSignIn(tx, userId),
    clock: clock.now,
  });
  const oidc = createOidcService({
    providers: options.oidc?.providers ?? [TEST_OIDC_PROVIDER],
    oidc: options.oidc?.client ?? parts.oidcClient,
    states: parts.oidcStates,
    links: parts.links,
    mfa,
    guard,
    sessions,
    transactions,
    policy: { stateTtlSeconds: 600, linkTtlSeconds: 600 },
    clock: clock.now,
  });
  return {
    sessions,
    oneTimeTokens,
    mfa,
    passkeys,
    oidc,
    credentials: createCredentialService({
      credentials: parts.credentials,
      passwords: parts.passwords,
      sessions,
      oneTimeTokens,
      transactions,
      guard,
      mfa,
    }),
    signingKeys: createSigningKeyService({
      signingKeys: parts.signingKeys,
      transactions,
      clock: clock.now,
    }),
    /** The token in the last mail sent. */
    mailedToken: () => /\n\n([\w-]{43})\n/.exec(mailer.sent.at(-1)?.text ?? '')?.[1] ?? '',
  };
}

/** The use cases over in-memory fakes, which come along to be looked into. */
export function wireOverFakes(options: WiringOptions = {}) {
  const sessions = createFakeSessionRepository();
  const clock = options.clock ?? createTestClock();
  const credentials = createFakeCredentialRepository();
  const passkeys = createFakePasskeyRepository();
  const fakes = {
    transactions: createFakeTransactions(),
    revocations: createFakeRevocations(),
    sessions,
    mfa: createFakeMfaRepository(
      sessions.sessions,
      async (userId) => (await passkeys.countByUser([userId])).get(userId) ?? 0,
    ),
    passkeys,
    passkeyChallenges: createFakePasskeyChallengeRepository(clock),
    links: createFakeLinkedAccountRepository(
      async (userId) =>
        credentials.credentials.has(userId) || (await passkeys.countByUser([userId])).size > 0,
    ),
    oidcStates: createFakeOidcStateRepository(clock),
    oidcClient: createFakeOidcClient(),
    credentials,
    oneTimeTokens: createFakeOneTimeTokenRepository(),
    signingKeys: createFakeSigningKeyRepository(),
    guesses: createFakeGuessRepository(),
    passwords: createFakePasswordHasher(),
    mailer: createFakeMailer(),
    clock,
  };
  return { ...wire(fakes, options), fakes };
}

/** The use cases over the real repositories, transactions and Redis of a test world. */
export function wireOverWorld(world: AuthTestWorld, options: WiringOptions = {}) {
  const { db } = world;
  const parts = {
    transactions: world.transactions,
    revocations: world.revocations,
    sessions: createSessionRepository(db),
    credentials: createCredentialRepository(db),
    oneTimeTokens: createOneTimeTokenRepository(db),
    signingKeys: createSigningKeyRepository(db),
    guesses: createGuessRepository(world.redis),
    mfa: createMfaRepository(db),
    passkeys: createPasskeyRepository(db),
    passkeyChallenges: createPasskeyChallengeRepository(world.redis),
    links: createLinkedAccountRepository(db),
    oidcStates: createOidcStateRepository(world.redis),
    oidcClient: createFakeOidcClient(),
    passwords: createFakePasswordHasher(),
    mailer: createFakeMailer(),
    clock: options.clock ?? createTestClock(),
  };
  return { ...wire(parts, options), mailer: parts.mailer, passwords: parts.passwords };
}
