import { AppError } from '@platform/errors';
import { isUuid, requirePlainText } from '@platform/validation';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { AuthTransactions, AuthTx } from './auth.transactions';
import { accountOf, type MfaService, type MfaSignIn } from './mfa.service';
import type { GuessingClient, PasswordGuard } from './password-guard';
import type { RelyingParty } from './passkey.config';
import type {
  CeremonyState,
  PasskeyChallengeRepository,
  PasskeyRepository,
  PasskeyRow,
} from './passkey.repository';
import type { SessionService } from './session.service';

/** What a user sees of a passkey (never the key or the counter). */
export interface PasskeyView {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  transports: string[];
  backedUp: boolean;
}

export interface PasskeyPolicy {
  relyingParty: RelyingParty;
  /** How long a ceremony's challenge stays usable. */
  challengeTtlSeconds: number;
}

/** Passkeys (WebAuthn): registration, sign-in, listing and removal (docs/identity.md). */
export interface PasskeyService {
  /** Creation options (JSON) for navigator.credentials.create. Needs recent authentication. */
  beginRegistration(userId: string, sessionId: string, userName: string): Promise<string>;
  /**
   * Verifies the attestation against the challenge this user's session was given, the origins
   * and the RP id, and stores the credential. Needs recent authentication; emits passkey_added.
   */
  finishRegistration(
    userId: string,
    sessionId: string,
    responseJson: string,
    name: string | undefined,
  ): Promise<PasskeyView>;
  /**
   * Request options (JSON) for navigator.credentials.get: any discoverable credential; or, given
   * the MFA challenge a right password earned, one of that user's passkeys to complete it.
   */
  beginLogin(mfaChallenge?: string): Promise<string>;
  /** Request options for one of the user's own passkeys, to prove it is still them. */
  beginReauthentication(userId: string, sessionId: string): Promise<string>;
  /**
   * Verifies the assertion like a sign-in (under the same guess limits; a wrong one is
   * BAD_USER_INPUT on `response`) and stamps the session as recently authenticated.
   */
  reauthenticate(
    userId: string,
    sessionId: string,
    responseJson: string,
    client: GuessingClient,
  ): Promise<Date>;
  /**
   * Verifies an assertion (challenge once, origin, RP id, user verification, signature, counter)
   * and opens a session. A failed assertion of a known passkey counts against its user's guess
   * limits like a wrong password; every failure is UNAUTHENTICATED.
   */
  finishLogin(
    responseJson: string,
    userAgent: string | undefined,
    client: GuessingClient,
  ): Promise<MfaSignIn>;
  list(userId: string): Promise<PasskeyView[]>;
  /**
   * Needs recent authentication; emits passkey_removed. NOT_FOUND if it is not theirs; CONFLICT
   * (LAST_SIGN_IN_METHOD) if it is the user's last way to sign in.
   */
  remove(userId: string, sessionId: string, passkeyId: string): Promise<void>;
  /** Passkeys per user, for GetMfaStatus. */
  countByUser(userIds: readonly string[]): Promise<Map<string, number>>;
}

export interface PasskeyServiceDeps {
  passkeys: PasskeyRepository;
  challenges: PasskeyChallengeRepository;
  mfa: Pick<
    MfaService,
    | 'requireRecent'
    | 'requireLiveWithin'
    | 'stampRecent'
    | 'findChallenge'
    | 'findChallengeByHash'
    | 'countChallengeFailure'
    | 'complete'
    | 'emitChange'
    | 'wayInRemoved'
    | 'factorAdded'
  >;
  guard: PasswordGuard;
  sessions: Pick<SessionService, 'open'>;
  transactions: AuthTransactions;
  policy: PasskeyPolicy;
  /**
   * Whether the user can still sign in some way (a password, a passkey, a linked account), asked
   * inside the removal's transaction; without it, every user is taken to have a password.
   */
  canStillSignIn?: (tx: AuthTx, userId: string) => Promise<boolean>;
  clock?: () => Date;
}

/** A ceremony response is a few hundred bytes to a few KiB (attestation certificates). */
export const MAX_RESPONSE_JSON_LENGTH = 64 * 1024;
export const MAX_PASSKEYS_PER_USER = 20;
const MAX_NAME_LENGTH = 64;

const base64url = z
  .string()
  .min(1)
  .max(16 * 1024)
  .regex(/^[\w-]+={0,2}$/);
const ceremonyResponse = z.object({
  id: base64url.max(1366),
  rawId: base64url.max(1366),
  type: z.literal('public-key'),
  response: z.looseObject({ clientDataJSON: base64url }),
  clientExtensionResults: z.looseObject({}).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});

const clientData = z.looseObject({ challenge: z.string().max(256) });

/**
 * The transports the client said its authenticator has (a hint, stored and sent back with
 * each sign-in's options): only the ones WebAuthn defines, each once. The client's list is
 * taken as it came by the library, so anything else (any string, of any length) is dropped.
 */
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
const knownTransports = (transports: readonly unknown[] | undefined): string[] => [
  ...new Set(
    (transports ?? []).filter(
      (transport): transport is string =>
        typeof transport === 'string' && TRANSPORTS.has(transport),
    ),
  ),
];

/** The response parsed, and the challenge its client data names; null if it is not one. */
function parseResponse(json: string): { response: unknown; challenge: string } | null {
  if (json.length > MAX_RESPONSE_JSON_LENGTH) return null;
  try {
    const parsed = ceremonyResponse.safeParse(JSON.parse(json));
    if (!parsed.success) return null;
    const data = clientData.safeParse(
      JSON.parse(Buffer.from(parsed.data.response.clientDataJSON, 'base64url').toString('utf8')),
    );
    return data.success ? { response: parsed.data, challenge: data.data.challenge } : null;
  } catch {
    return null;
  }
}

const viewOf = (row: PasskeyRow): PasskeyView => ({
  id: row.id,
  name: row.name,
  createdAt: row.createdAt,
  lastUsedAt: row.lastUsedAt,
  transports: row.transports,
  backedUp: row.backedUp,
});

const signInFailed = () => AppError.unauthenticated('Passkey sign-in failed; begin again');
const invalidChallenge = () =>
  AppError.unauthenticated('The sign-in challenge is invalid or has expired; sign in again');
const badRegistration = (reason: string) => AppError.badInput('response', reason);

/** A uuid as the 16 bytes WebAuthn's user handle carries. */
const userHandleOf = (userId: string) =>
  new Uint8Array(Buffer.from(userId.replace(/-/g, ''), 'hex'));

export function createPasskeyService(deps: PasskeyServiceDeps): PasskeyService {
  const { passkeys, challenges, mfa, guard, sessions, transactions, policy } = deps;
  const { relyingParty: rp } = policy;
  const clock = deps.clock ?? (() => new Date());
  const timeout = policy.challengeTtlSeconds * 1000;

  /**
   * Whether the assertion is right for this passkey (signature, challenge, origin, RP id, user
   * verification, a counter that moved forward), recording its use if so.
   */
  async function assertionHolds(
    passkey: PasskeyRow,
    response: AuthenticationResponseJSON,
    challenge: string,
  ): Promise<boolean> {
    let newCounter: number;
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        credential: {
          id: passkey.credentialId,
          publicKey: new Uint8Array(passkey.publicKey),
          counter: passkey.counter,
          transports: passkey.transports,
        },
        requireUserVerification: true,
      });
      if (!result.verified) return false;
      newCounter = result.authenticationInfo.newCounter;
    } catch {
      // Bad signature, wrong origin or RP id, no user verification, a counter that went
      // backwards (a cloned authenticator): all one answer, counted like a wrong password.
      return false;
    }
    // Conditional on the counter it was checked against: of two racing assertions, one wins.
    return passkeys.recordUse(passkey.id, passkey.counter, newCounter, clock());
  }

  /** Request options naming these passkeys, the challenge saved for `state`. */
  async function requestOptionsFor(own: PasskeyRow[], state: CeremonyState): Promise<string> {
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      timeout,
      userVerification: 'required',
      allowCredentials: own.map((row) => ({ id: row.credentialId, transports: row.transports })),
    });
    await challenges.save(options.challenge, state, policy.challengeTtlSeconds);
    return JSON.stringify(options);
  }

  return {
    async beginRegistration(userId, sessionId, userName) {
      await mfa.requireRecent(userId, sessionId);
      const existing = await passkeys.listByUser(userId);
      if (existing.length >= MAX_PASSKEYS_PER_USER)
        throw AppError.conflict(`At most ${MAX_PASSKEYS_PER_USER} passkeys; remove one first`);
      const options = await generateRegistrationOptions({
        rpName: rp.name,
        rpID: rp.id,
        userName: userName || userId,
        userID: userHandleOf(userId),
        timeout,
        attestationType: 'none',
        // The authenticator already holding one of this user's passkeys says so instead.
        excludeCredentials: existing.map((row) => ({
          id: row.credentialId,
          transports: row.transports,
        })),
        // Discoverable (usernameless sign-in) and verified (PIN or biometrics): a second factor.
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      });
      await challenges.save(
        options.challenge,
        { kind: 'registration', userId, sessionId },
        policy.challengeTtlSeconds,
      );
      return JSON.stringify(options);
    },

    async finishRegistration(userId, sessionId, responseJson, name) {
      await mfa.requireRecent(userId, sessionId);
      const parsed = parseResponse(responseJson);
      if (!parsed) throw badRegistration('is not a passkey registration response');
      // Taken (deleted) before anything is checked: a challenge is good for one try.
      const state = await challenges.take(parsed.challenge);
      if (
        state?.kind !== 'registration' ||
        state.userId !== userId ||
        state.sessionId !== sessionId
      )
        throw badRegistration('its challenge is unknown, used or expired; begin again');
      const label = requirePlainText((name ?? '').normalize('NFC').trim() || 'Passkey', 'name');
      if (label.length > MAX_NAME_LENGTH)
        throw AppError.badInput('name', `is longer than ${MAX_NAME_LENGTH} characters`);
      let verified;
      try {
        verified = await verifyRegistrationResponse({
          response: parsed.response as RegistrationResponseJSON,
          expectedChallenge: parsed.challenge,
          expectedOrigin: rp.origins,
          expectedRPID: rp.id,
          requireUserVerification: true,
        });
      } catch {
        // The library's message may quote the response; the caller learns only that it failed.
        throw badRegistration('could not be verified (origin, relying party or attestation)');
      }
      if (!verified.verified) throw badRegistration('could not be verified');
      const { credential, aaguid, credentialBackedUp } = verified.registrationInfo;
      const created = await transactions.run(async (tx) => {
        // A deletion (or a sign-out everywhere) that committed since the check above leaves
        // nothing to register the passkey to.
        await mfa.requireLiveWithin(tx.client, userId, sessionId);
        // Counted again here: registrations begun side by side must not pass the limit.
        if ((await passkeys.countLocked(tx.client, userId)) >= MAX_PASSKEYS_PER_USER)
          throw AppError.conflict(`At most ${MAX_PASSKEYS_PER_USER} passkeys; remove one first`);
        const row = await passkeys.create(tx.client, {
          userId,
          credentialId: credential.id,
          publicKey: credential.publicKey,
          counter: credential.counter,
          transports: knownTransports(credential.transports),
          name: label,
          aaguid,
          backedUp: credentialBackedUp,
        });
        if (!row) throw AppError.conflict('This passkey is registered already');
        await mfa.factorAdded(tx, userId, sessionId);
        await mfa.emitChange(tx, userId, 'passkey_added');
        return row;
      });
      return viewOf(created);
    },

    async beginLogin(mfaChallenge) {
      if (mfaChallenge === undefined) {
        const options = await generateAuthenticationOptions({
          rpID: rp.id,
          timeout,
          userVerification: 'required',
        });
        await challenges.save(options.challenge, { kind: 'login' }, policy.challengeTtlSeconds);
        return JSON.stringify(options);
      }
      // The second step of a password sign-in: that user's passkeys only.
      const open = await mfa.findChallenge(mfaChallenge);
      if (!open) throw invalidChallenge();
      const own = await passkeys.listByUser(open.userId);
      if (own.length === 0) throw invalidChallenge();
      return requestOptionsFor(own, { kind: 'mfa', challengeHash: open.tokenHash });
    },

    async beginReauthentication(userId, sessionId) {
      const own = await passkeys.listByUser(userId);
      if (own.length === 0) throw AppError.notFound('Passkey');
      return requestOptionsFor(own, { kind: 'reauthentication', userId, sessionId });
    },

    async reauthenticate(userId, sessionId, responseJson, client) {
      const refused = () => AppError.badInput('response', 'is not a valid passkey assertion');
      const parsed = parseResponse(responseJson);
      if (!parsed) throw refused();
      const state = await challenges.take(parsed.challenge);
      if (
        state?.kind !== 'reauthentication' ||
        state.userId !== userId ||
        state.sessionId !== sessionId
      )
        throw refused();
      const response = parsed.response as AuthenticationResponseJSON;
      const passkey = await passkeys.findByCredentialId(response.id);
      if (passkey?.userId !== userId) throw refused();
      const right = await guard.check(accountOf(userId), client, () =>
        assertionHolds(passkey, response, parsed.challenge),
      );
      if (!right) throw refused();
      return mfa.stampRecent(userId, sessionId);
    },

    async finishLogin(responseJson, userAgent, client) {
      const parsed = parseResponse(responseJson);
      if (!parsed) throw signInFailed();
      const state = await challenges.take(parsed.challenge);
      if (state?.kind !== 'login' && state?.kind !== 'mfa') throw signInFailed();
      // Completing an MFA challenge: it must still be open, and the passkey its user's.
      const mfaHash = state.kind === 'mfa' ? state.challengeHash : undefined;
      const open = mfaHash ? await mfa.findChallengeByHash(mfaHash) : null;
      if (mfaHash && !open) throw invalidChallenge();
      const response = parsed.response as AuthenticationResponseJSON;
      const passkey = await passkeys.findByCredentialId(response.id);
      // An unknown credential has no account to count against; each try needs a new challenge,
      // and the users subgraph limits those per client address.
      if (!passkey || (open && passkey.userId !== open.userId)) throw signInFailed();
      // The device that typed the password is the one answering: the same buckets as its login.
      const guessing = open
        ? { address: client.address, deviceToken: open.deviceToken ?? undefined }
        : client;
      const right = await guard.check(accountOf(passkey.userId), guessing, () =>
        assertionHolds(passkey, response, parsed.challenge),
      );
      if (!right) {
        if (mfaHash) await mfa.countChallengeFailure(mfaHash);
        throw signInFailed();
      }
      // The session is opened under the user's lock, if the passkey is still theirs: a removal
      // of it (or of the account) that committed since it was read refuses this sign-in, and
      // one that comes after ends its session with the others.
      const stillRegistered = async (tx: AuthTx) => {
        if (!(await passkeys.stillRegistered(tx, passkey.userId, passkey.id))) throw signInFailed();
      };
      if (mfaHash && open) return mfa.complete(mfaHash, open, stillRegistered);
      const deviceToken = await guard.deviceTokenFor(accountOf(passkey.userId), client.deviceToken);
      const tokens = await sessions.open(passkey.userId, userAgent, stillRegistered);
      return { tokens, deviceToken };
    },

    async list(userId) {
      return (await passkeys.listByUser(userId)).map(viewOf);
    },

    async remove(userId, sessionId, passkeyId) {
      await mfa.requireRecent(userId, sessionId);
      if (!isUuid(passkeyId)) throw AppError.notFound('Passkey');
      await transactions.run(async (tx) => {
        if (!(await passkeys.remove(tx.client, userId, passkeyId)))
          throw AppError.notFound('Passkey');
        // A user who signed up with a provider and unlinked it may have only passkeys left.
        if (deps.canStillSignIn && !(await deps.canStillSignIn(tx.client, userId)))
          throw new AppError(
            'CONFLICT',
            'This is your only way to sign in; set a password or link an account first',
            { reason: 'LAST_SIGN_IN_METHOD' },
          );
        await mfa.wayInRemoved(tx, userId, sessionId);
        await mfa.emitChange(tx, userId, 'passkey_removed');
      });
    },

    countByUser(userIds) {
      return passkeys.countByUser(userIds.filter(isUuid));
    },
  };
}
