import { timingSafeEqual } from 'node:crypto';
import { METADATA } from './grpc.types';

/** The header (HTTP) or metadata key (gRPC) the platform's internal credential travels in. */
export const INTERNAL_TOKEN_HEADER = METADATA.internalToken;

/** Whether `presented` is the internal credential, compared in constant time. */
export function isInternalCredential(presented: unknown, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
