import type { CursorPosition } from './cursor';

/** Which way a keyset list runs: by creation time, then id, both the same way. */
export type KeysetOrder = 'asc' | 'desc';

type Beyond<T> = { gt: T } | { lt: T };

/** The rows past a position, as a Prisma `where` condition. */
export interface KeysetCondition {
  OR: [{ createdAt: Beyond<Date> }, { createdAt: Date; id: Beyond<string> }];
}

/** What a keyset page reads: Prisma `findMany` arguments, assignable to any model's. */
export interface KeysetQuery<Where> {
  where: Where | { AND: [Where, KeysetCondition] };
  orderBy: [{ createdAt: KeysetOrder }, { id: KeysetOrder }];
  take: number;
}

export interface KeysetPage<Row> {
  rows: Row[];
  hasNextPage: boolean;
  /** Rows matching `where`, on every page. */
  totalCount: number;
}

/**
 * One page of a list in (createdAt, id) order: the `first` rows matching `where` past `after`
 * (reading one more tells whether a next page exists) and how many match in all, read at once.
 * Ties on the time are broken by the id, so no row is skipped or repeated across pages.
 */
export async function readKeysetPage<Where, Row>(
  where: Where,
  page: { first: number; after?: CursorPosition | undefined; order: KeysetOrder },
  read: {
    rows(query: KeysetQuery<Where>): Promise<Row[]>;
    count(where: Where): Promise<number>;
  },
): Promise<KeysetPage<Row>> {
  const { first, after, order } = page;
  const beyond = <T>(value: T): Beyond<T> => (order === 'asc' ? { gt: value } : { lt: value });
  const [rows, totalCount] = await Promise.all([
    read.rows({
      where: after
        ? {
            AND: [
              where,
              {
                OR: [
                  { createdAt: beyond(after.createdAt) },
                  { createdAt: after.createdAt, id: beyond(after.id) },
                ],
              },
            ],
          }
        : where,
      orderBy: [{ createdAt: order }, { id: order }],
      take: first + 1,
    }),
    read.count(where),
  ]);
  return { rows: rows.slice(0, first), hasNextPage: rows.length > first, totalCount };
}
