import { randomUUID } from 'node:crypto';
import { AppError } from '@platform/errors';
import type { OidcClient, OidcIdentity } from '../oidc.client';
import type {
  LinkedAccountRepository,
  LinkedAccountRow,
  OidcFlow,
  OidcStateRepository,
  PendingIdentity,
} from '../oidc.repository';
import type { TestClock } from './auth.fakes';

export interface FakeLinkedAccountRepository extends LinkedAccountRepository {
  readonly rows: Map<string, LinkedAccountRow>;
}

/** In memory; `otherMethod` says whether a user has a password or a passkey. */
export function createFakeLinkedAccountRepository(
  otherMethod: (userId: string) => Promise<boolean>,
): FakeLinkedAccountRepository {
  const rows = new Map<string, LinkedAccountRow>();
  const ofUser = (userId: string) => [...rows.values()].filter((row) => row.userId === userId);
  return {
    rows,
    async findBySubject(provider, subject) {
      const row = [...rows.values()].find(
        (each) => each.provider === provider && each.subject === subject,
      );
      return row ? { ...row } : null;
    },
    async listByUser(userId) {
      return ofUser(userId)
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
        .map((row) => ({ ...row }));
    },
    async create(_tx, link) {
      if (
        [...rows.values()].some(
          (row) => row.provider === link.provider && row.subject === link.subject,
        )
      )
        return null;
      const row = { id: randomUUID(), ...link, createdAt: new Date() };
      rows.set(row.id, row);
      return { ...row };
    },
    async lockByUser(_tx, userId) {
      return ofUser(userId).map((row) => ({ id: row.id }));
    },
    async remove(_tx, userId, id) {
      if (rows.get(id)?.userId !== userId) return false;
      return rows.delete(id);
    },
    async stillLinked(_tx, userId, id) {
      return rows.get(id)?.userId === userId;
    },
    hasOtherMethod(_tx, userId) {
      return otherMethod(userId);
    },
    async canSignIn(_tx, userId) {
      return (await otherMethod(userId)) || ofUser(userId).length > 0;
    },
  };
}

/** In memory, expiring on the test clock. */
export function createFakeOidcStateRepository(clock: TestClock): OidcStateRepository {
  const saved = new Map<string, { value: OidcFlow | PendingIdentity; expiresAt: number }>();
  const save = (key: string, value: OidcFlow | PendingIdentity, ttlSeconds: number) => {
    saved.set(key, { value, expiresAt: clock.now().getTime() + ttlSeconds * 1000 });
  };
  const take = (key: string) => {
    const entry = saved.get(key);
    saved.delete(key);
    return entry && entry.expiresAt > clock.now().getTime() ? entry.value : null;
  };
  return {
    async saveFlow(state, flow, ttlSeconds) {
      save(`flow:${state}`, flow, ttlSeconds);
    },
    async takeFlow(state) {
      return take(`flow:${state}`) as OidcFlow | null;
    },
    async savePending(hash, identity, ttlSeconds) {
      save(`pending:${hash}`, identity, ttlSeconds);
    },
    async takePending(hash) {
      return take(`pending:${hash}`) as PendingIdentity | null;
    },
  };
}

export interface FakeOidcClient extends OidcClient {
  /** The identity each code vouches for; an unknown code is refused like a bad one. */
  readonly codes: Map<string, OidcIdentity>;
  /** What the last redemption was given (to check the verifier and nonce travelled). */
  readonly redeemed: { codeVerifier: string; nonce: string; redirectUri: string }[];
  /** Makes the provider unreachable (discovery and tokens) until set back. */
  down: boolean;
}

/** A provider that answers from a table of codes. */
export function createFakeOidcClient(): FakeOidcClient {
  const fake: FakeOidcClient = {
    codes: new Map(),
    redeemed: [],
    down: false,
    async authorizationUrl(provider, request) {
      if (fake.down) throw AppError.unavailable();
      const url = new URL(`${provider.issuer}/authorize`);
      url.searchParams.set('redirect_uri', request.redirectUri);
      url.searchParams.set('state', request.state);
      url.searchParams.set('nonce', request.nonce);
      url.searchParams.set('code_challenge', request.codeChallenge);
      return url.toString();
    },
    async redeem(provider, redemption) {
      if (fake.down) throw AppError.unavailable();
      fake.redeemed.push(redemption);
      const identity = fake.codes.get(redemption.code);
      if (!identity) throw AppError.unauthenticated(`Sign-in with ${provider.name} failed`);
      return identity;
    },
  };
  return fake;
}
