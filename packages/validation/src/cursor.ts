import { AppError } from '@platform/errors';
import { isUuid } from './rules';

/** Where a keyset page ends: rows are ordered by creation time, then id. */
export interface CursorPosition {
  createdAt: Date;
  id: string;
}

/** An opaque cursor for a row of a keyset-paginated list. */
export function encodeCursor(row: CursorPosition): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');
}

/** Years a stored row can have: a cursor beyond them is not ours (and PostgreSQL would fail). */
const YEARS = { min: 1970, max: 9999 };

/**
 * The position a cursor stands for; BAD_USER_INPUT naming `field` when it is not one of ours:
 * exactly our encoding, an id that is a UUID and a time a row can have.
 */
export function decodeCursor(cursor: string, field = 'after'): CursorPosition {
  const [iso, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  const valid =
    id !== undefined &&
    rest.length === 0 &&
    isUuid(id) &&
    !Number.isNaN(createdAt.getTime()) &&
    createdAt.getUTCFullYear() >= YEARS.min &&
    createdAt.getUTCFullYear() <= YEARS.max &&
    createdAt.toISOString() === iso;
  if (!valid) throw AppError.badInput(field, 'is not a valid cursor');
  return { createdAt, id };
}

const KIND = /^[a-z][a-z_-]*$/;
/** PostgreSQL's largest bigint: no row has a larger sequence number. */
const MAX_SEQUENCE = 9_223_372_036_854_775_807n;

function requireKind(kind: string): string {
  if (!KIND.test(kind)) throw new Error(`invalid cursor kind ${JSON.stringify(kind)}`);
  return kind;
}

/**
 * An opaque cursor for a row of a list ordered by a sequence number (an insertion order such
 * as a bigserial), tagged with what the sequence counts so one list's cursor is refused by
 * another's.
 */
export function encodeSequenceCursor(kind: string, seq: bigint): string {
  if (seq < 0n || seq > MAX_SEQUENCE) throw new Error(`no row has the sequence number ${seq}`);
  return Buffer.from(`${requireKind(kind)}:${seq}`).toString('base64url');
}

/**
 * The sequence number a cursor of `kind` stands for; BAD_USER_INPUT naming `field` when it
 * is not one of ours.
 */
export function decodeSequenceCursor(kind: string, cursor: string, field = 'after'): bigint {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const prefix = `${requireKind(kind)}:`;
  const digits = text.startsWith(prefix) ? text.slice(prefix.length) : '';
  const seq = /^\d{1,19}$/.test(digits) ? BigInt(digits) : null;
  if (seq === null || seq > MAX_SEQUENCE) throw AppError.badInput(field, 'is not a valid cursor');
  return seq;
}
