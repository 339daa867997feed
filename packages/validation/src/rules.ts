import { createRequire } from 'node:module';
import { AppError } from '@platform/errors';

// Input rules shared by the edge (subgraphs) and the services that own the data, so both
// reject the same input with the same message.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const PASSWORD_LENGTH = { min: 8, max: 128 } as const;

// The 30,000 most common passwords (zxcvbn's frequency list, from leaked password sets).
const COMMON_PASSWORDS: ReadonlySet<string> = new Set(
  (createRequire(import.meta.url)('zxcvbn/lib/frequency_lists.js') as { passwords: string[] })
    .passwords,
);

export const isCommonPassword = (password: string): boolean =>
  COMMON_PASSWORDS.has(password.toLowerCase());

export const isUuid = (value: string): boolean => UUID.test(value);

/** The id itself; BAD_USER_INPUT naming `field` ("must be a <kind> id") when it is not one. */
export function requireId(field: string, value: string, kind?: string): string {
  if (!isUuid(value))
    throw AppError.badInput(field, kind ? `must be a ${kind} id` : 'must be an id');
  return value;
}

/** Trimmed and lower-cased; BAD_USER_INPUT naming `field` when not an address. */
export function validateEmail(value: string, field = 'email'): string {
  const email = value.trim().toLowerCase();
  if (email.length > 254 || !EMAIL.test(email))
    throw AppError.badInput(field, 'must be a valid email address');
  return email;
}

export function validateDisplayName(value: string, field = 'displayName'): string {
  const name = value.trim();
  if (name.length < 1 || name.length > 100)
    throw AppError.badInput(field, 'must be 1 to 100 characters');
  return name;
}

/** Length, and not among the most common passwords; no composition rules (NIST SP 800-63B). */
export function validatePassword(value: string, field = 'password'): string {
  const length = [...value].length;
  if (length < PASSWORD_LENGTH.min || length > PASSWORD_LENGTH.max) {
    throw AppError.badInput(
      field,
      `must be ${PASSWORD_LENGTH.min} to ${PASSWORD_LENGTH.max} characters`,
    );
  }
  if (isCommonPassword(value)) throw AppError.badInput(field, 'is too common; choose another');
  return value;
}
