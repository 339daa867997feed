import { AppError } from '@platform/errors';

/**
 * How deep a notification's data may nest: it travels to the service as a
 * google.protobuf.Value, which gRPC decodes to about 33 containers deep.
 */
export const MAX_DATA_DEPTH = 32;

function nestsDeeperThan(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (levels === 0) return true;
  const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
  return children.some((child) => nestsDeeperThan(child, levels - 1));
}

/**
 * A key that decoding drops: the service rebuilds objects by assignment, and assigning
 * `__proto__` sets an object's prototype instead of a key, so it would vanish silently.
 */
const UNSENDABLE_KEY = '__proto__';

function holdsUnsendableKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(holdsUnsendableKey);
  return Object.hasOwn(value, UNSENDABLE_KEY) || Object.values(value).some(holdsUnsendableKey);
}

/**
 * The data to send (undefined for none); BAD_USER_INPUT when it nests too deep to send, or
 * holds a key it would lose on the way.
 */
export function requireSendableData(data: unknown): unknown {
  if (nestsDeeperThan(data, MAX_DATA_DEPTH))
    throw AppError.badInput('data', `must nest at most ${MAX_DATA_DEPTH} levels deep`);
  if (holdsUnsendableKey(data))
    throw AppError.badInput('data', `must not use the key "${UNSENDABLE_KEY}"`);
  return data ?? undefined;
}
