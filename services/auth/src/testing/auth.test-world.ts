import { afterAll, beforeAll } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createTestRun, type TestRun } from '@platform/testing';
import { createSessionRevocations, type SessionRevocations } from '@platform/tokens';
import { createAuthTransactions, type AuthTransactions } from '../auth.transactions';
import { createRevocationRestorer, type RevocationRestorer } from '../revocation.restorer';
import { createSessionRepository } from '../session.repository';
import { revocationTtlSeconds } from '../session.service';
import { fakeSigner } from './auth.fakes';
import { createAuthFactories, type AuthFactories } from './auth.factories';

/** A test file's own database (migrated) and Redis key space, with the auth plumbing on them. */
export interface AuthTestWorld extends AuthFactories {
  readonly run: TestRun;
  readonly db: Database;
  readonly redis: Redis;
  /** The Redis copy of ended sessions, on this run's keys; rebuilt by `restorer` after a loss. */
  readonly revocations: SessionRevocations;
  /** Rebuilds that copy from this world's database (entries as long as `fakeSigner`'s tokens). */
  readonly restorer: RevocationRestorer;
  readonly transactions: AuthTransactions;
  /** How often the transactions woke the outbox relay. */
  readonly relayKicks: number;
}

/** Sets the world up before the file's tests and tears it down after them. */
export function useAuthTestWorld(): AuthTestWorld {
  let ready: Omit<AuthTestWorld, 'relayKicks'> | undefined;
  let relayKicks = 0;
  const world = () => {
    if (!ready) throw new Error('the test world exists only while the tests run');
    return ready;
  };

  beforeAll(async () => {
    const run = await createTestRun();
    const db = await connectDatabase({ databaseUrl: run.databaseUrl });
    const redis = await createRedis({
      url: run.redisUrl,
      keyPrefix: run.redisKeyPrefix,
      logger: createLogger({ name: 'auth-test', level: 'silent' }),
    });
    const revocations = createSessionRevocations(redis, { rebuild: () => restorer.restore() });
    const restorer = createRevocationRestorer({
      sessions: createSessionRepository(db),
      revocations,
      entryTtlSeconds: revocationTtlSeconds(fakeSigner.ttlSeconds),
    });
    ready = {
      run,
      db,
      redis,
      revocations,
      restorer,
      transactions: createAuthTransactions(db, { kick: () => relayKicks++ }),
      ...createAuthFactories(db),
    };
  });

  afterAll(async () => {
    if (!ready) return;
    await ready.redis.quit();
    await ready.db.$disconnect();
    await ready.run.close();
  });

  return {
    get run() {
      return world().run;
    },
    get db() {
      return world().db;
    },
    get redis() {
      return world().redis;
    },
    get revocations() {
      return world().revocations;
    },
    get restorer() {
      return world().restorer;
    },
    get transactions() {
      return world().transactions;
    },
    get relayKicks() {
      return relayKicks;
    },
    newSession: (fields) => world().newSession(fields),
    newCredential: (fields) => world().newCredential(fields),
    newOneTimeToken: (fields) => world().newOneTimeToken(fields),
    newSigningKey: (fields) => world().newSigningKey(fields),
    outboxEvents: (type) => world().outboxEvents(type),
  };
}
