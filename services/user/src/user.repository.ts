import { prepared, Prisma, type Database, type User, type UserStatus } from '@platform/db';
import { AppError } from '@platform/errors';
import type { EventEnvelope } from '@platform/events';
import { enqueueEvent } from '@platform/outbox';
import type { CursorPosition, KeysetPage } from '@platform/validation';

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

/**
 * A page of users, oldest first, after the cursor ($3, $4) if any, those whose email or display
 * name starts with $2 (a LIKE pattern, escaped) if it is not empty, with how many match on every
 * page: one statement (the admin's user list). A page past the end is one row of nulls holding
 * the count.
 */
const LIST_USERS = prepared(
  'user-list',
  `WITH matching AS (
     SELECT * FROM "users"."users"
      WHERE $2::text = '' OR email ILIKE $2 || '%' OR display_name ILIKE $2 || '%'
   ), total AS (
     SELECT count(*)::int AS "totalCount" FROM matching
   )
   SELECT total."totalCount", page.* FROM total LEFT JOIN LATERAL (
     SELECT id::text, email, display_name AS "displayName", status::text AS status,
            email_verified AS "emailVerified", created_at AS "createdAt", updated_at AS "updatedAt"
       FROM matching
      WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $3::uuid)
      ORDER BY created_at ASC, id ASC
      LIMIT $4
   ) page ON true`,
);

export function createUserRepository(db: Database): UserRepository {
  return {
    findByIds(ids) {
      return db.user.findMany({ where: { id: { in: [...ids] } } });
    },
    findByEmail(email) {
      return db.user.findUnique({ where: { email } });
    },
    async list({ first, after, search }) {
      const rows = await db.$run<User & { totalCount: number }>(LIST_USERS, [
        after?.createdAt ?? null,
        search ? escapeLike(search) : '',
        after?.id ?? null,
        first + 1,
      ]);
      const page = rows.filter((row) => row.id !== null).map(({ totalCount: _, ...user }) => user);
      return {
        rows: page.slice(0, first),
        hasNextPage: page.length > first,
        totalCount: rows[0]?.totalCount ?? 0,
      };
    },
    transaction: (work) => db.$transaction((tx) => work(transactionQueries(tx))),
  };
}
