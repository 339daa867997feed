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

/** The data to send (undefined for none); BAD_USER_INPUT when it nests too deep to send. */
export function requireSendableData(data: unknown): unknown {
  if (nestsDeeperThan(data, MAX_DATA_DEPTH))
    throw AppError.badInput('data', `must nest at most ${MAX_DATA_DEPTH} levels deep`);
  return data ?? undefined;
}
