import type { User } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import type { OutboxRelay } from '@platform/outbox';
import {
  isUuid,
  normalizeEmail,
  validateDisplayName,
  validateEmail,
  type CursorPosition,
  type KeysetPage,
} from '@platform/validation';
import type { UserCache } from './user.cache';
import type { UserChange, UserRepository } from './user.repository';

const MAX_BATCH = 500;
const MAX_PAGE = 100;
const MAX_SEARCH = 254;

export interface UserService {
  /** Creates the profile and emits user.registered; CONFLICT when the email is taken. */
  register(input: { email: string; displayName: string }): Promise<User>;
  /** NOT_FOUND when there is none. */
  get(id: string): Promise<User>;
  /** The users that exist among `ids` (at most 500), once each, in the order asked. */
  getMany(ids: readonly string[]): Promise<User[]>;
  findByEmail(email: string): Promise<User>;
  list(query: {
    first: number;
    after?: CursorPosition | undefined;
    search: string;
  }): Promise<KeysetPage<User>>;
  /** Changes what is given; emits user.updated and/or user.status_changed for what changed. */
  update(id: string, change: UserChange): Promise<User>;
  /** Removes the profile and emits user.deleted; NOT_FOUND when there was none. */
  delete(id: string): Promise<void>;
}

export function createUserService(deps: {
  users: UserRepository;
  cache: UserCache;
  relay: Pick<OutboxRelay, 'kick'>;
}): UserService {
  const { users, cache, relay } = deps;

  /** Read-through the cache; ids that are not ids are nobody. */
  async function load(ids: readonly string[]): Promise<Map<string, User>> {
    return cache.get(ids.filter(isUuid), async (missing) => {
      const loaded = await users.findByIds(missing);
      return new Map(loaded.map((user) => [user.id, user]));
    });
  }

  return {
    async register(input) {
      const email = validateEmail(input.email);
      const displayName = validateDisplayName(input.displayName);
      const user = await users.transaction(async (tx) => {
        const created = await tx.insert({ email, displayName });
        await tx.enqueue(
          createEvent('user.registered', { userId: created.id, email, displayName }),
        );
        return created;
      });
      relay.kick();
      return user;
    },

    async get(id) {
      const user = (await load([id])).get(id);
      if (!user) throw AppError.notFound('User');
      return user;
    },

    async getMany(ids) {
      if (ids.length > MAX_BATCH) throw AppError.badInput('ids', `at most ${MAX_BATCH} per call`);
      const unique = [...new Set(ids)];
      const found = await load(unique);
      return unique.flatMap((id) => found.get(id) ?? []);
    },

    async findByEmail(email) {
      const user = await users.findByEmail(normalizeEmail(email));
      if (!user) throw AppError.notFound('User');
      return user;
    },

    async list({ first, after, search }) {
      if (first < 1 || first > MAX_PAGE)
        throw AppError.badInput('first', `must be between 1 and ${MAX_PAGE}`);
      const term = search.trim();
      if (term.length > MAX_SEARCH)
        throw AppError.badInput('search', `must be at most ${MAX_SEARCH} characters`);
      return users.list({ first, after, search: term || undefined });
    },

    async update(id, change) {
      const displayName =
        change.displayName === undefined ? undefined : validateDisplayName(change.displayName);
      const changed = !isUuid(id)
        ? null
        : await users.transaction(async (tx) => {
            // Locked, so concurrent changes apply one after the other and each compares
            // with what the previous one left: the last event says what the user is now.
            const before = await tx.lock(id);
            if (!before) return null;
            // Out of the cache before the commit too, and kept out until it is forgotten after
            // it: Redis unreachable fails the change whole, instead of committing it and leaving
            // the old profile cached once Redis is back.
            const pending = await cache.beginChange(id);
            const after = await tx.update(id, { ...change, displayName });
            if (after.displayName !== before.displayName)
              await tx.enqueue(
                createEvent('user.updated', { userId: id, displayName: after.displayName }),
              );
            if (after.status !== before.status)
              await tx.enqueue(
                createEvent('user.status_changed', { userId: id, status: after.status }),
              );
            return { after, pending };
          });
      if (!changed) throw AppError.notFound('User');
      relay.kick();
      await cache.forget(id, changed.pending);
      return changed.after;
    },

    async delete(id) {
      const deleted =
        isUuid(id) &&
        (await users.transaction(async (tx) => {
          if (!(await tx.delete(id))) return null;
          const pending = await cache.beginChange(id);
          await tx.enqueue(createEvent('user.deleted', { userId: id }));
          return { pending };
        }));
      if (!deleted) throw AppError.notFound('User');
      relay.kick();
      await cache.forget(id, deleted.pending);
    },
  };
}
