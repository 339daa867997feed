import { timingSafeEqual } from 'node:crypto';

/** The header the gateway's subgraph requests carry the platform's internal credential in. */
export const INTERNAL_TOKEN_HEADER = 'x-internal-token';

/** Whether `presented` is the internal credential, compared in constant time. */
export function isInternalCredential(presented: unknown, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
