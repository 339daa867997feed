// Test-only: in-memory stand-ins for the user repository and cache, for unit tests of the use
// cases. A transaction that throws leaves nothing behind, as PostgreSQL's would.
import { randomUUID } from 'node:crypto';
import type { User } from '@platform/db';
import { AppError } from '@platform/errors';
import type { EventEnvelope } from '@platform/events';
import type { UserCache } from '../user.cache';
import type { UserRepository, UserTransaction } from '../user.repository';

export interface FakeUserRepository extends UserRepository {
  readonly users: Map<string, User>;
  /** The outbox, in order. */
  readonly events: EventEnvelope[];
  /** How many times the users were read by id. */
  readonly reads: number;
}

export function createFakeUserRepository(): FakeUserRepository {
  let users = new Map<string, User>();
  let events: EventEnvelope[] = [];
  let reads = 0;

  function queries(): UserTransaction {
    return {
      async insert({ email, displayName }) {
        if ([...users.values()].some((user) => user.email === email))
          throw AppError.conflict('A user with this email already exists');
        const now = new Date();
        const user: User = {
          id: randomUUID(),
          email,
          displayName,
          status: 'ACTIVE',
          emailVerified: false,
          createdAt: now,
          updatedAt: now,
        };
        users.set(user.id, user);
        return user;
      },
      async lock(id) {
        return users.get(id) ?? null;
      },
      async update(id, change) {
        const before = users.get(id);
        if (!before) throw new Error(`no user ${id}`);
        const defined = Object.fromEntries(
          Object.entries(change).filter(([, value]) => value !== undefined),
        );
        const after: User = { ...before, ...defined, updatedAt: new Date() };
        users.set(id, after);
        return after;
      },
      async delete(id) {
        return users.delete(id);
      },
      async enqueue(event) {
        events.push(event);
      },
    };
  }

  return {
    get users() {
      return users;
    },
    get events() {
      return events;
    },
    get reads() {
      return reads;
    },
    async findByIds(ids) {
      reads++;
      return ids.flatMap((id) => users.get(id) ?? []);
    },
    async findByEmail(email) {
      return [...users.values()].find((user) => user.email === email) ?? null;
    },
    async list({ first, search }) {
      const rows = [...users.values()].filter(
        (user) =>
          !search ||
          [user.email, user.displayName].some((text) =>
            text.toLowerCase().startsWith(search.toLowerCase()),
          ),
      );
      return {
        rows: rows.slice(0, first),
        hasNextPage: rows.length > first,
        totalCount: rows.length,
      };
    },
    async transaction(work) {
      const saved = { users: new Map(users), events: [...events] };
      try {
        return await work(queries());
      } catch (error) {
        ({ users, events } = saved);
        throw error;
      }
    },
  };
}

/**
 * A profile cache that keeps what it was given until it is told to forget, as Redis does, and
 * keeps nothing a change reached while it was being read, nor while a change is under way.
 */
export function createFakeUserCache(): UserCache {
  const cached = new Map<string, User>();
  const changes = new Map<string, number>();
  /** Each user's change under way, if any (what its forget is given). */
  const pending = new Map<string, string>();
  const change = (id: string) => {
    changes.set(id, (changes.get(id) ?? 0) + 1);
    cached.delete(id);
  };
  return {
    async get(ids, load) {
      const found = new Map(ids.flatMap((id) => (cached.has(id) ? [[id, cached.get(id)!]] : [])));
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length === 0) return found;
      const held = new Map(missing.map((id) => [id, changes.get(id) ?? 0]));
      for (const [id, user] of await load(missing)) {
        found.set(id, user);
        if (!pending.has(id) && held.get(id) === (changes.get(id) ?? 0)) cached.set(id, user);
      }
      return found;
    },
    async beginChange(id) {
      const token = `pending.${changes.get(id) ?? 0}`;
      pending.set(id, token);
      change(id);
      return token;
    },
    async forget(id, token) {
      if (pending.get(id) === token) pending.delete(id);
      change(id);
    },
  };
}
