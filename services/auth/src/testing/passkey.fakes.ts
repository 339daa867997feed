import { randomUUID } from 'node:crypto';
import type {
  CeremonyState,
  PasskeyChallengeRepository,
  PasskeyRepository,
  PasskeyRow,
} from '../passkey.repository';
import type { TestClock } from './auth.fakes';

export interface FakePasskeyRepository extends PasskeyRepository {
  readonly rows: Map<string, PasskeyRow>;
}

/** In memory. */
export function createFakePasskeyRepository(): FakePasskeyRepository {
  const rows = new Map<string, PasskeyRow>();
  const copy = (row: PasskeyRow): PasskeyRow => ({ ...row, transports: [...row.transports] });
  return {
    rows,
    async listByUser(userId) {
      return [...rows.values()]
        .filter((row) => row.userId === userId)
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
        .map(copy);
    },
    async findByCredentialId(credentialId) {
      const row = [...rows.values()].find((each) => each.credentialId === credentialId);
      return row ? copy(row) : null;
    },
    async countLocked(_tx, userId) {
      return [...rows.values()].filter((row) => row.userId === userId).length;
    },
    async create(_tx, passkey) {
      if ([...rows.values()].some((row) => row.credentialId === passkey.credentialId)) return null;
      const row: PasskeyRow = {
        id: randomUUID(),
        userId: passkey.userId,
        credentialId: passkey.credentialId,
        publicKey: passkey.publicKey,
        counter: passkey.counter,
        transports: passkey.transports,
        name: passkey.name,
        backedUp: passkey.backedUp,
        createdAt: new Date(),
        lastUsedAt: null,
      };
      rows.set(row.id, row);
      return copy(row);
    },
    async recordUse(id, previous, counter, at) {
      const row = rows.get(id);
      if (!row) return false;
      const forward = counter === 0 && previous === 0 ? row.counter === 0 : row.counter < counter;
      if (!forward) return false;
      row.counter = counter;
      row.lastUsedAt = at;
      return true;
    },
    async remove(_tx, userId, id) {
      if (rows.get(id)?.userId !== userId) return false;
      return rows.delete(id);
    },
    async stillRegistered(_tx, userId, id) {
      return rows.get(id)?.userId === userId;
    },
    async countByUser(userIds) {
      const counts = new Map<string, number>();
      for (const row of rows.values())
        if (userIds.includes(row.userId)) counts.set(row.userId, (counts.get(row.userId) ?? 0) + 1);
      return counts;
    },
  };
}

/** In memory, expiring on the test clock. */
export function createFakePasskeyChallengeRepository(clock: TestClock): PasskeyChallengeRepository {
  const saved = new Map<string, { state: CeremonyState; expiresAt: number }>();
  return {
    async save(challenge, state, ttlSeconds) {
      saved.set(challenge, { state, expiresAt: clock.now().getTime() + ttlSeconds * 1000 });
    },
    async take(challenge) {
      const entry = saved.get(challenge);
      saved.delete(challenge);
      return entry && entry.expiresAt > clock.now().getTime() ? entry.state : null;
    },
  };
}
