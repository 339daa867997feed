import { Prisma, type PrismaClient, type User, type UserStatus } from '@platform/db';
import { AppError } from '@platform/errors';
import type { EventEnvelope } from '@platform/events';
import { enqueueEvent } from '@platform/outbox';
import { readKeysetPage, type CursorPosition, type KeysetPage } from '@platform/validation';

export const USERS_SCHEMA = 'users';

export interface UserChange {
  displayName?: string | undefined;
  status?: UserStatus | undefined;
  emailVerified?: boolean | undefined;
}

/** The queries a use case may run inside one transaction. */
export interface UserTransaction {
  /** CONFLICT when the email is taken. */
  insert(user: { email: string; displayName: string }): Promise<User>;
  /** The user, locked until the transaction ends (so changes to them queue up); or null. */
  lock(id: string): Promise<User | null>;
  /** Changes what is given. */
  update(id: string, change: UserChange): Promise<User>;
  /** False when there was no such user. */
  delete(id: string): Promise<boolean>;
  /** Writes the event to the outbox: it is published if and only if the transaction commits. */
  enqueue(event: EventEnvelope): Promise<void>;
}

export interface UserRepository {
  findByIds(ids: readonly string[]): Promise<User[]>;
  findByEmail(email: string): Promise<User | null>;
  /**
   * Oldest first; `search` matches the start of the email or display name, in any case,
   * literally (`%` and `_` are no wildcards).
   */
  list(page: {
    first: number;
    after?: CursorPosition | undefined;
    search?: string | undefined;
  }): Promise<KeysetPage<User>>;
  transaction<T>(work: (tx: UserTransaction) => Promise<T>): Promise<T>;
}

function transactionQueries(tx: Prisma.TransactionClient): UserTransaction {
  return {
    async insert(user) {
      try {
        return await tx.user.create({ data: user });
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002')
          throw AppError.conflict('A user with this email already exists');
        throw error;
      }
    },
    async lock(id) {
      const [locked] = await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text FROM "users"."users" WHERE id = ${id}::uuid FOR UPDATE`;
      return locked ? tx.user.findUnique({ where: { id } }) : null;
    },
    update(id, change) {
      return tx.user.update({ where: { id }, data: change });
    },
    async delete(id) {
      const { count } = await tx.user.deleteMany({ where: { id } });
      return count > 0;
    },
    enqueue: (event) => enqueueEvent(tx, USERS_SCHEMA, event),
  };
}

/**
 * `text` as a LIKE pattern that matches itself only: `%`, `_` and the backslash (PostgreSQL's
 * default LIKE escape character, which Prisma's `startsWith` keeps) escaped with a backslash.
 */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}

export function createUserRepository(db: PrismaClient): UserRepository {
  return {
    findByIds(ids) {
      return db.user.findMany({ where: { id: { in: [...ids] } } });
    },
    findByEmail(email) {
      return db.user.findUnique({ where: { email } });
    },
    list({ first, after, search }) {
      // Prisma's `startsWith` builds an ILIKE pattern from the text as it is.
      const prefix = search ? escapeLike(search) : '';
      const where: Prisma.UserWhereInput = prefix
        ? {
            OR: [
              { email: { startsWith: prefix, mode: 'insensitive' } },
              { displayName: { startsWith: prefix, mode: 'insensitive' } },
            ],
          }
        : {};
      return readKeysetPage(
        where,
        { first, after, order: 'asc' },
        {
          rows: (query) => db.user.findMany(query),
          count: (matching) => db.user.count({ where: matching }),
        },
      );
    },
    transaction: (work) => db.$transaction((tx) => work(transactionQueries(tx))),
  };
}
