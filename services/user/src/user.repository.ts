import { isUuid } from '@platform/validation';
import { Prisma, type PrismaClient, type User, type UserStatus } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import { enqueueEvent, type OutboxRelay } from '@platform/outbox';

export const USERS_SCHEMA = 'users';

export interface UserRepository {
  create(input: { email: string; displayName: string }): Promise<User>;
  findById(id: string): Promise<User | null>;
  findByIds(ids: readonly string[]): Promise<User[]>;
  findByEmail(email: string): Promise<User | null>;
  /** Removes the profile and emits user.deleted; false when there was none. */
  delete(id: string): Promise<boolean>;
  /** A page in creation order; `search` matches the start of the email or display name. */
  list(page: {
    first: number;
    after?: { createdAt: Date; id: string } | undefined;
    search?: string | undefined;
  }): Promise<{ users: User[]; hasNextPage: boolean; totalCount: number }>;
  /** Changes what is given; emits user.updated / user.status_changed; null when absent. */
  update(
    id: string,
    change: {
      displayName?: string | undefined;
      status?: UserStatus | undefined;
      emailVerified?: boolean | undefined;
    },
  ): Promise<User | null>;
}

export function createUserRepository(
  db: PrismaClient,
  relay: Pick<OutboxRelay, 'kick'>,
): UserRepository {
  return {
    async create({ email, displayName }) {
      try {
        const user = await db.$transaction(async (tx) => {
          const created = await tx.user.create({ data: { email, displayName } });
          await enqueueEvent(
            tx,
            USERS_SCHEMA,
            createEvent('user.registered', { userId: created.id, email, displayName }),
          );
          return created;
        });
        relay.kick();
        return user;
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
          throw AppError.conflict('A user with this email already exists');
        }
        throw error;
      }
    },
    async findById(id) {
      if (!isUuid(id)) return null;
      return db.user.findUnique({ where: { id } });
    },
    findByEmail(email) {
      return db.user.findUnique({ where: { email } });
    },
    async delete(id) {
      if (!isUuid(id)) return false;
      const deleted = await db.$transaction(async (tx) => {
        const { count } = await tx.user.deleteMany({ where: { id } });
        if (count === 0) return false;
        await enqueueEvent(tx, USERS_SCHEMA, createEvent('user.deleted', { userId: id }));
        return true;
      });
      if (deleted) relay.kick();
      return deleted;
    },
    async list({ first, after, search }) {
      const where: Prisma.UserWhereInput = search
        ? {
            OR: [
              { email: { startsWith: search, mode: 'insensitive' } },
              { displayName: { startsWith: search, mode: 'insensitive' } },
            ],
          }
        : {};
      const [rows, totalCount] = await Promise.all([
        db.user.findMany({
          where: after
            ? {
                AND: [
                  where,
                  {
                    OR: [
                      { createdAt: { gt: after.createdAt } },
                      { createdAt: after.createdAt, id: { gt: after.id } },
                    ],
                  },
                ],
              }
            : where,
          orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
          take: first + 1,
        }),
        db.user.count({ where }),
      ]);
      return { users: rows.slice(0, first), hasNextPage: rows.length > first, totalCount };
    },
    async update(id, change) {
      if (!isUuid(id)) return null;
      const updated = await db.$transaction(async (tx) => {
        const before = await tx.user.findUnique({ where: { id } });
        if (!before) return null;
        const after = await tx.user.update({
          where: { id },
          data: {
            ...(change.displayName !== undefined ? { displayName: change.displayName } : {}),
            ...(change.status !== undefined ? { status: change.status } : {}),
            ...(change.emailVerified !== undefined ? { emailVerified: change.emailVerified } : {}),
          },
        });
        if (after.displayName !== before.displayName) {
          await enqueueEvent(
            tx,
            USERS_SCHEMA,
            createEvent('user.updated', { userId: id, displayName: after.displayName }),
          );
        }
        if (after.status !== before.status) {
          await enqueueEvent(
            tx,
            USERS_SCHEMA,
            createEvent('user.status_changed', { userId: id, status: after.status }),
          );
        }
        return after;
      });
      if (updated) relay.kick();
      return updated;
    },
    async findByIds(ids) {
      const valid = ids.filter((id) => isUuid(id));
      if (valid.length === 0) return [];
      return db.user.findMany({ where: { id: { in: valid } } });
    },
  };
}
