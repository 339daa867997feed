import { Prisma, type PrismaClient, type User } from '@platform/db';
import { AppError } from '@platform/errors';
import { createEvent } from '@platform/events';
import { enqueueEvent, type OutboxRelay } from '@platform/outbox';

export const USERS_SCHEMA = 'users';

export interface UserRepository {
  create(input: { email: string; displayName: string }): Promise<User>;
  findById(id: string): Promise<User | null>;
  findByIds(ids: readonly string[]): Promise<User[]>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
      if (!UUID.test(id)) return null;
      return db.user.findUnique({ where: { id } });
    },
    async findByIds(ids) {
      const valid = ids.filter((id) => UUID.test(id));
      if (valid.length === 0) return [];
      return db.user.findMany({ where: { id: { in: valid } } });
    },
  };
}
