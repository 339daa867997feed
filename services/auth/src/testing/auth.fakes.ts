// In-memory stand-ins for the repositories and the outside world, for unit tests of the use
// cases. They keep the promises the real ones document; the *.int.spec.ts files hold the real
// ones to them against PostgreSQL and Redis.
import { randomUUID } from 'node:crypto';
import type { Credential, OneTimeTokenPurpose, Session, SigningKey } from '@platform/db';
import type { EventEnvelope } from '@platform/events';
import type { Mail, Mailer } from '@platform/mail';
import type { PublicJwk, SessionRevocations, TokenSigner } from '@platform/tokens';
import type { AuthTransaction, AuthTransactions, AuthTx } from '../auth.transactions';
import type { CredentialRepository } from '../credential.repository';
import type { NewOneTimeToken, OneTimeTokenRepository } from '../one-time-token.repository';
import type { PasswordHasher } from '../password.hasher';
import type { SessionRepository } from '../session.repository';
import { isActive } from '../session.service';
import type { SigningKeyRepository } from '../signing-key.repository';

/** A clock that moves only when told to. */
export interface TestClock {
  readonly now: () => Date;
  readonly advance: (seconds: number) => void;
}

export function createTestClock(start = new Date()): TestClock {
  let time = start.getTime();
  return {
    now: () => new Date(time),
    advance(seconds) {
      time += seconds * 1000;
    },
  };
}

/** The fakes never query: a repository fake that received this client ignores it. */
const NO_CLIENT = new Proxy(
  {},
  {
    get() {
      throw new Error('an in-memory fake was handed a transaction client and used it');
    },
  },
) as AuthTx;

/** Commits like the real thing: events and after-commit effects only when the work succeeds. */
export interface FakeTransactions extends AuthTransactions {
  /** The events of committed transactions, in order. */
  readonly events: EventEnvelope[];
}

export function createFakeTransactions(): FakeTransactions {
  const events: EventEnvelope[] = [];
  const transactions: FakeTransactions = {
    events,
    // No lock to queue for in memory.
    runFor: (_userId, work) => transactions.run(work),
    async run(work) {
      const emitted: EventEnvelope[] = [];
      const effects: (() => Promise<void>)[] = [];
      const tx: AuthTransaction = {
        client: NO_CLIENT,
        emit: async (event) => void emitted.push(event),
        afterCommit: (effect) => void effects.push(effect),
      };
      const result = await work(tx);
      events.push(...emitted);
      for (const effect of effects) await effect();
      return result;
    },
  };
  return transactions;
}

/** A refresh token as the fake keeps it (by hash). */
export interface FakeRefreshToken {
  sessionId: string;
  rotatedAt: Date | null;
  generation: number;
}

export interface FakeSessionRepository extends SessionRepository {
  readonly sessions: Map<string, Session>;
  /** Refresh tokens by hash. */
  readonly tokens: Map<string, FakeRefreshToken>;
  /** The successor key stored by the first `ensureSuccessorKey`. */
  readonly successorKey: Uint8Array | undefined;
}

export function createFakeSessionRepository(): FakeSessionRepository {
  const sessions = new Map<string, Session>();
  const tokens = new Map<string, FakeRefreshToken>();
  let successorKey: Uint8Array | undefined;

  return {
    sessions,
    tokens,
    get successorKey() {
      return successorKey;
    },
    async create({ refreshTokenHash, createdAt, ...fields }) {
      const session: Session = {
        ...fields,
        id: randomUUID(),
        createdAt,
        lastUsedAt: createdAt,
        reauthenticatedAt: null,
        revokedAt: null,
        revokedReason: null,
      };
      sessions.set(session.id, session);
      tokens.set(refreshTokenHash, { sessionId: session.id, rotatedAt: null, generation: 0 });
      return { ...session };
    },
    async rotateIfCurrent(rotation) {
      const token = tokens.get(rotation.tokenHash);
      const session = token && sessions.get(token.sessionId);
      if (!token || token.rotatedAt || !session || !isActive(session, rotation.at)) return null;
      token.rotatedAt = rotation.at;
      tokens.set(rotation.successorHash, {
        sessionId: session.id,
        rotatedAt: null,
        generation: token.generation + 1,
      });
      const idleExpiresAt =
        rotation.idleExpiresAt < session.expiresAt ? rotation.idleExpiresAt : session.expiresAt;
      const touched = {
        ...session,
        lastUsedAt: rotation.at,
        idleExpiresAt,
        userAgent: rotation.userAgent ?? session.userAgent,
      };
      sessions.set(session.id, touched);
      return { ...touched };
    },
    async lockToken(_tx, tokenHash) {
      const token = tokens.get(tokenHash);
      const session = token && sessions.get(token.sessionId);
      if (!token || !session) return null;
      return { session: { ...session }, rotatedAt: token.rotatedAt, generation: token.generation };
    },
    async liveToken(_tx, sessionId) {
      const live = [...tokens]
        .filter(([, token]) => token.sessionId === sessionId && !token.rotatedAt)
        .sort(([, a], [, b]) => b.generation - a.generation);
      const [newest] = live;
      return newest ? { tokenHash: newest[0], generation: newest[1].generation } : null;
    },
    async listActive(userId, at) {
      return [...sessions.values()]
        .filter((session) => session.userId === userId && isActive(session, at))
        .sort((a, b) => b.lastUsedAt.getTime() - a.lastUsedAt.getTime());
    },
    async liveAmong(sessionIds, at) {
      return sessionIds.flatMap((id) => {
        const session = sessions.get(id);
        return session && !session.revokedAt && session.expiresAt > at
          ? [{ id, userId: session.userId }]
          : [];
      });
    },
    async endedSince(since) {
      return [...sessions.values()].flatMap((session) =>
        session.revokedAt && session.revokedAt > since
          ? [{ id: session.id, revokedAt: session.revokedAt }]
          : [],
      );
    },
    async revoke(_tx, userId, which, reason, at) {
      const ended = [...sessions.values()].filter(
        (session) =>
          session.userId === userId &&
          !session.revokedAt &&
          session.expiresAt > at &&
          (which.only === undefined || session.id === which.only) &&
          (which.except === undefined || session.id !== which.except) &&
          (which.createdBefore === undefined || session.createdAt < which.createdBefore),
      );
      for (const session of ended) {
        sessions.set(session.id, { ...session, revokedAt: at, revokedReason: reason });
      }
      return ended.map((session) => session.id);
    },
    async ensureSuccessorKey(candidate) {
      successorKey ??= candidate;
      return successorKey;
    },
  };
}

export interface FakeCredentialRepository extends CredentialRepository {
  readonly credentials: Map<string, Credential>;
}

export function createFakeCredentialRepository(): FakeCredentialRepository {
  const credentials = new Map<string, Credential>();
  const store = (userId: string, passwordHash: string) => {
    const now = new Date();
    const createdAt = credentials.get(userId)?.createdAt ?? now;
    credentials.set(userId, { userId, passwordHash, createdAt, updatedAt: now });
  };
  return {
    credentials,
    async find(userId) {
      return credentials.get(userId) ?? null;
    },
    async create(userId, passwordHash) {
      if (credentials.has(userId)) return false;
      store(userId, passwordHash);
      return true;
    },
    async update(_tx, userId, passwordHash) {
      if (!credentials.has(userId)) throw new Error(`no credential for ${userId}`);
      store(userId, passwordHash);
    },
    async upsert(_tx, userId, passwordHash) {
      store(userId, passwordHash);
    },
    async delete(_tx, userId) {
      credentials.delete(userId);
    },
    async lockUser() {
      // In memory, one change runs at a time: nothing to wait for.
    },
    async currentHash(_tx, userId) {
      return credentials.get(userId)?.passwordHash ?? null;
    },
  };
}

export interface FakeOneTimeTokenRepository extends OneTimeTokenRepository {
  readonly tokens: Map<string, NewOneTimeToken & { createdAt: Date; usedAt: Date | null }>;
  /** `consumer event-id` of every event handled. */
  readonly processed: Set<string>;
}

export function createFakeOneTimeTokenRepository(): FakeOneTimeTokenRepository {
  const tokens = new Map<string, NewOneTimeToken & { createdAt: Date; usedAt: Date | null }>();
  const processed = new Set<string>();
  /** The token if it can be used at `at` for `purpose`: known, unused, unexpired. */
  const usable = (tokenHash: string, purpose: OneTimeTokenPurpose, at: Date) => {
    const token = tokens.get(tokenHash);
    return token && token.purpose === purpose && !token.usedAt && token.expiresAt > at
      ? token
      : undefined;
  };
  return {
    tokens,
    processed,
    async create(token) {
      tokens.set(token.tokenHash, { ...token, createdAt: new Date(), usedAt: null });
    },
    async processOnce(_tx, consumer, eventId) {
      const key = `${consumer} ${eventId}`;
      if (processed.has(key)) return false;
      processed.add(key);
      return true;
    },
    async markUsed(tokenHash, purpose: OneTimeTokenPurpose, at) {
      const token = usable(tokenHash, purpose, at);
      if (!token) return null;
      token.usedAt = at;
      return token.userId;
    },
    async findUsable(tokenHash, purpose: OneTimeTokenPurpose, at) {
      return usable(tokenHash, purpose, at)?.userId ?? null;
    },
    async markAllUsed(_tx, userId, purpose: OneTimeTokenPurpose, at, createdBefore) {
      for (const token of tokens.values())
        if (
          token.userId === userId &&
          token.purpose === purpose &&
          !token.usedAt &&
          (!createdBefore || token.createdAt < createdBefore)
        )
          token.usedAt = at;
    },
  };
}

export interface FakeSigningKeyRepository extends SigningKeyRepository {
  readonly keys: SigningKey[];
}

export function createFakeSigningKeyRepository(): FakeSigningKeyRepository {
  const keys: SigningKey[] = [];
  const newestFirst = () => keys.toSorted((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  return {
    keys,
    async lock() {},
    async findActive() {
      return newestFirst().find((key) => key.retiredAt === null) ?? null;
    },
    async retire(_tx, kid, at) {
      const key = keys.find((candidate) => candidate.kid === kid);
      if (key) key.retiredAt = at;
    },
    async create(_tx, key) {
      const created: SigningKey = { ...key, publicJwk: { ...key.publicJwk }, retiredAt: null };
      keys.push(created);
      return created;
    },
    async listPublic(retiredAfter) {
      return newestFirst()
        .filter((key) => key.retiredAt === null || key.retiredAt > retiredAfter)
        .map((key) => key.publicJwk as unknown as PublicJwk);
    },
  };
}

/** Hashes are readable (`hashed:<password>`); counts verifications, which cost time for real. */
export interface FakePasswordHasher extends PasswordHasher {
  readonly verifications: number;
}

export function createFakePasswordHasher(): FakePasswordHasher {
  let verifications = 0;
  return {
    get verifications() {
      return verifications;
    },
    hash: async (password) => `hashed:${password}`,
    async verify(storedHash, password) {
      verifications++;
      return storedHash === `hashed:${password}`;
    },
  };
}

/** Access tokens that say whose they are: `access:<userId>:<sessionId>`. */
export const fakeSigner: TokenSigner = {
  ttlSeconds: 900,
  sign: ({ userId, sessionId }) => `access:${userId}:${sessionId}`,
};

/** Ended sessions with the lifetime their entry was given. */
export interface FakeRevocations extends Omit<SessionRevocations, 'currentMarker' | 'rebuild'> {
  readonly entries: Map<string, number>;
  /** Which `revoke` calls (counted from 1) fail as if Redis were unreachable. */
  failingCalls: Set<number>;
}

export function createFakeRevocations(): FakeRevocations {
  const entries = new Map<string, number>();
  let calls = 0;
  const fake: FakeRevocations = {
    entries,
    failingCalls: new Set(),
    async revoke(sessionIds, ttlSeconds) {
      calls++;
      if (fake.failingCalls.has(calls)) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      for (const sessionId of sessionIds) entries.set(sessionId, ttlSeconds);
    },
    async restore(sessions) {
      for (const { sessionId, ttlSeconds } of sessions) entries.set(sessionId, ttlSeconds);
    },
    async isComplete() {
      return true;
    },
    async isRevoked(sessionId) {
      return entries.has(sessionId);
    },
    async revokedAmong(sessionIds) {
      return new Set(sessionIds.filter((sessionId) => entries.has(sessionId)));
    },
    async listed() {
      return [...entries.keys()];
    },
  };
  return fake;
}

export interface FakeMailer extends Pick<Mailer, 'send'> {
  readonly sent: Mail[];
  /** When set, every delivery fails (after being recorded). */
  failing: boolean;
}

export function createFakeMailer(): FakeMailer {
  const sent: Mail[] = [];
  const mailer: FakeMailer = {
    sent,
    failing: false,
    async send(mail) {
      sent.push(mail);
      if (mailer.failing) throw new Error('SMTP server unreachable');
    },
  };
  return mailer;
}
