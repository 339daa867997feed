import { isUuid } from '@platform/validation';
import { Prisma, type PrismaClient, type User } from '@platform/db';
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
    async findByIds(ids) {
      const valid = ids.filter((id) => isUuid(id));
      if (valid.length === 0) return [];
      return db.user.findMany({ where: { id: { in: valid } } });
    },
  };
}
