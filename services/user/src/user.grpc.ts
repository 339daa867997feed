import type { User } from '@platform/db';
import { AppError } from '@platform/errors';
import type { UnaryHandlers } from '@platform/grpc';
import { userV1 } from '@platform/proto';
import {
  decodeCursor,
  encodeCursor,
  validateDisplayName,
  validateEmail,
} from '@platform/validation';
import type { UserCache } from './user.cache';
import type { UserRepository } from './user.repository';

const MAX_BATCH = 500;
const MAX_PAGE = 100;

const normaliseEmail = (email: string) => email.trim().toLowerCase();

export function toProtoUser(user: User): userV1.User {
  return {
    id: user.id,
    email: user.email,
    displayName: user.displayName,
    status:
      user.status === 'ACTIVE'
        ? userV1.UserStatus.USER_STATUS_ACTIVE
        : userV1.UserStatus.USER_STATUS_DISABLED,
    emailVerified: user.emailVerified,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

export function createUserHandlers(deps: {
  users: UserRepository;
  cache: UserCache;
}): UnaryHandlers<typeof userV1.UserServiceService> {
  const { users, cache } = deps;

  async function load(ids: readonly string[]): Promise<Map<string, User>> {
    const found = await cache.getMany(ids);
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) {
      const loaded = await users.findByIds(missing);
      await cache.setMany(loaded);
      for (const user of loaded) found.set(user.id, user);
    }
    return found;
  }

  return {
    async createUser(request) {
      const email = validateEmail(request.email);
      const displayName = validateDisplayName(request.displayName);
      const user = await users.create({ email, displayName });
      return { user: toProtoUser(user) };
    },
    async getUser(request) {
      const user = (await load([request.id])).get(request.id);
      if (!user) throw AppError.notFound('User');
      return { user: toProtoUser(user) };
    },
    async getUserByEmail(request) {
      const user = await users.findByEmail(normaliseEmail(request.email));
      if (!user) throw AppError.notFound('User');
      return { user: toProtoUser(user) };
    },
    async deleteUser(request) {
      if (!(await users.delete(request.id))) throw AppError.notFound('User');
      await cache.forget(request.id);
      return {};
    },
    async listUsers(request) {
      const first = request.first || 20;
      if (first < 1 || first > MAX_PAGE)
        throw AppError.badInput('first', `must be between 1 and ${MAX_PAGE}`);
      const search = request.search.trim();
      if (search.length > 254) throw AppError.badInput('search', 'must be at most 254 characters');
      const page = await users.list({
        first,
        after: request.after ? decodeCursor(request.after) : undefined,
        search: search || undefined,
      });
      return {
        users: page.users.map(toProtoUser),
        cursors: page.users.map(encodeCursor),
        hasNextPage: page.hasNextPage,
        totalCount: page.totalCount,
      };
    },
    async updateUser(request) {
      const displayName =
        request.displayName === undefined ? undefined : validateDisplayName(request.displayName);
      const status =
        request.status === userV1.UserStatus.USER_STATUS_ACTIVE
          ? 'ACTIVE'
          : request.status === userV1.UserStatus.USER_STATUS_DISABLED
            ? 'DISABLED'
            : undefined;
      const user = await users.update(request.id, {
        displayName,
        status,
        emailVerified: request.emailVerified,
      });
      if (!user) throw AppError.notFound('User');
      await cache.forget(user.id);
      return { user: toProtoUser(user) };
    },
    async batchGetUsers(request) {
      if (request.ids.length > MAX_BATCH)
        throw AppError.badInput('ids', `at most ${MAX_BATCH} per call`);
      const unique = [...new Set(request.ids)];
      const found = await load(unique);
      return {
        users: unique.flatMap((id) => (found.has(id) ? [toProtoUser(found.get(id)!)] : [])),
      };
    },
  };
}
