import { AppError } from '@platform/errors';

/** Longest code accepted at the edge: a TOTP code is 6 digits, a recovery code 19 characters. */
const MAX_CODE_LENGTH = 32;

/**
 * A one-time code (TOTP or recovery) that may be left out, as `signIn(..., mfaCode)` takes it:
 * '' when blank, trimmed otherwise; BAD_USER_INPUT on `field` when too long to be a code.
 */
export function optionalCode(code: string | null | undefined, field: string): string {
  const trimmed = (code ?? '').trim();
  if (trimmed.length > MAX_CODE_LENGTH) throw AppError.badInput(field, 'is not a valid code');
  return trimmed;
}
