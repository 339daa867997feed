import { describe, expect, it } from 'vitest';
import { readKeysetPage, type KeysetCondition, type KeysetOrder, type KeysetQuery } from './keyset';

interface Row {
  id: string;
  createdAt: Date;
  kind: string;
}

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second));

/** Rows with ties on the time, as a table would hold them (in no particular order). */
const ROWS: Row[] = [
  { id: 'c', createdAt: at(1), kind: 'x' },
  { id: 'a', createdAt: at(2), kind: 'y' },
  { id: 'b', createdAt: at(1), kind: 'x' },
  { id: 'e', createdAt: at(3), kind: 'x' },
  { id: 'd', createdAt: at(1), kind: 'y' },
];

type Where = { kind?: string };

const beyond = (
  value: number | string,
  bound: { gt: number | string } | { lt: number | string },
) => ('gt' in bound ? value > bound.gt : value < bound.lt);
const time = (bound: { gt: Date } | { lt: Date }) =>
  'gt' in bound ? { gt: bound.gt.getTime() } : { lt: bound.lt.getTime() };

function past(row: Row, { OR: [earlier, tie] }: KeysetCondition): boolean {
  const t = row.createdAt.getTime();
  return (
    beyond(t, time(earlier.createdAt)) || (t === tie.createdAt.getTime() && beyond(row.id, tie.id))
  );
}

function matches(row: Row, where: KeysetQuery<Where>['where']): boolean {
  if ('AND' in where) return matches(row, where.AND[0]) && past(row, where.AND[1]);
  return where.kind === undefined || row.kind === where.kind;
}

/** What a database does with the query: filter, order, limit, count. */
const table = {
  rows(query: KeysetQuery<Where>) {
    const sign = query.orderBy[0].createdAt === 'asc' ? 1 : -1;
    const sorted = ROWS.filter((row) => matches(row, query.where)).sort(
      (x, y) => sign * (x.createdAt.getTime() - y.createdAt.getTime() || x.id.localeCompare(y.id)),
    );
    return Promise.resolve(sorted.slice(0, query.take));
  },
  count: (where: Where) => Promise.resolve(ROWS.filter((row) => matches(row, where)).length),
};

async function readAll(order: KeysetOrder, first: number, where: Where = {}) {
  const pages: { ids: string[]; hasNextPage: boolean; totalCount: number }[] = [];
  let after: Row | undefined;
  for (;;) {
    const page = await readKeysetPage(where, { first, after, order }, table);
    pages.push({
      ids: page.rows.map((row) => row.id),
      hasNextPage: page.hasNextPage,
      totalCount: page.totalCount,
    });
    after = page.rows.at(-1);
    if (!page.hasNextPage) return pages;
  }
}

describe(readKeysetPage.name, () => {
  it('pages through rows that share a time without skipping or repeating one', async () => {
    expect(await readAll('asc', 2)).toEqual([
      { ids: ['b', 'c'], hasNextPage: true, totalCount: 5 },
      { ids: ['d', 'a'], hasNextPage: true, totalCount: 5 },
      { ids: ['e'], hasNextPage: false, totalCount: 5 },
    ]);
  });

  it('runs newest first when asked, breaking ties by the id the same way', async () => {
    const pages = await readAll('desc', 2);
    expect(pages.flatMap((page) => page.ids)).toEqual(['e', 'a', 'd', 'c', 'b']);
  });

  it('says there is no next page when the last page is exactly full', async () => {
    expect(await readAll('asc', 5)).toEqual([
      { ids: ['b', 'c', 'd', 'a', 'e'], hasNextPage: false, totalCount: 5 },
    ]);
  });

  it('keeps the filter on every page and counts only what it matches', async () => {
    expect(await readAll('asc', 1, { kind: 'y' })).toEqual([
      { ids: ['d'], hasNextPage: true, totalCount: 2 },
      { ids: ['a'], hasNextPage: false, totalCount: 2 },
    ]);
  });
});
