import { AppError } from '@platform/errors';

// Input rules shared by the edge (subgraphs) and the services that own the data, so both
// reject the same input with the same message.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const PASSWORD_LENGTH = { min: 8, max: 128 } as const;

export const isUuid = (value: string): boolean => UUID.test(value);

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

/** Length only: no composition rules (NIST SP 800-63B). */
export function validatePassword(value: string, field = 'password'): string {
  const length = [...value].length;
  if (length < PASSWORD_LENGTH.min || length > PASSWORD_LENGTH.max) {
    throw AppError.badInput(
      field,
      `must be ${PASSWORD_LENGTH.min} to ${PASSWORD_LENGTH.max} characters`,
    );
  }
  return value;
}
