import { AppError } from '@platform/errors';

/** Where a keyset page ends: rows are ordered by creation time, then id. */
export interface CursorPosition {
  createdAt: Date;
  id: string;
}

/** An opaque cursor for a row of a keyset-paginated list. */
export function encodeCursor(row: CursorPosition): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');
}

/** The position a cursor stands for; BAD_USER_INPUT naming `field` when it is not one of ours. */
export function decodeCursor(cursor: string, field = 'after'): CursorPosition {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || Number.isNaN(createdAt.getTime()))
    throw AppError.badInput(field, 'is not a valid cursor');
  return { createdAt, id };
}
