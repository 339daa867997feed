import { createRequire } from 'node:module';
import { AppError } from '@platform/errors';

// Input rules shared by the edge (subgraphs) and the services that own the data, so both
// reject the same input with the same message.

// Ids as the platform writes them (PostgreSQL and randomUUID spell them in lower case): an
// upper-case spelling is not taken, since it would be another key wherever an id is compared
// as text (caches, Redis keys, directories) while PostgreSQL found the same row.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Control characters, and the bidirectional overrides and isolates that make a name display
// as something else than it is ("Trojan Source"-style spoofing in admin lists and mails).
const CONTROL_OR_BIDI_CHARS = String.raw`\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069`;
const CONTROL_OR_BIDI = new RegExp(`[${CONTROL_OR_BIDI_CHARS}]`, 'u');

// An address: something, "@", a domain with a dot. None of it may be what plain text refuses
// (above), nor any other format character (zero-width spaces and joiners, soft hyphens: an
// address holding one shows as another in lists and logs), nor whitespace, nor "@" or the other
// RFC 5322 specials, which a real mailbox holds only inside quotes (not taken here). Tested on
// the normalised address, so compatibility forms of these (fullwidth "＜", "﹫") are refused too.
// The domain is labels joined by single dots: no empty label, so no leading, doubled or
// trailing dot ("example.com." reaches the same mailbox as "example.com", and would be a
// second account for it).
const EMAIL_PART = String.raw`[^${CONTROL_OR_BIDI_CHARS}\p{Cf}\s@<>()[\]\\,;:"]+`;
const DOMAIN_LABEL = String.raw`[^${CONTROL_OR_BIDI_CHARS}\p{Cf}\s@<>()[\]\\,;:".]+`;
const EMAIL = new RegExp(String.raw`^${EMAIL_PART}@${DOMAIN_LABEL}(?:\.${DOMAIN_LABEL})+$`, 'u');

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

// The full stops IDNA (and so mailers) read as "." in a domain: ideographic, fullwidth and
// halfwidth (NFKC leaves the ideographic one). Spelt "." so that a domain has one spelling, and
// "mail。example.com" is the account of "mail.example.com", not a second one.
const DOMAIN_DOTS = /[\u3002\uFF0E\uFF61]/gu;

/**
 * The one spelling of an address: Unicode NFKC, trimmed, lower-cased, so the composed and
 * decomposed spellings, the fullwidth and other compatibility forms ("ａｄｍｉｎ" is "admin") and
 * any case of one address are one account, at sign-up, sign-in and lookup alike.
 */
export const normalizeEmail = (value: string): string => {
  const email = value.normalize('NFKC').trim().toLowerCase();
  const at = email.lastIndexOf('@');
  return at < 0 ? email : email.slice(0, at + 1) + email.slice(at + 1).replace(DOMAIN_DOTS, '.');
};

/** The normalised address; BAD_USER_INPUT naming `field` when not an address. */
export function validateEmail(value: string, field = 'email'): string {
  const email = normalizeEmail(value);
  if (email.length > 254 || !EMAIL.test(email))
    throw AppError.badInput(field, 'must be a valid email address');
  return email;
}

export function validateDisplayName(value: string, field = 'displayName'): string {
  const name = value.normalize('NFC').trim();
  if (name.length < 1 || name.length > 100)
    throw AppError.badInput(field, 'must be 1 to 100 characters');
  return requirePlainText(name, field);
}

/** `value` unchanged; BAD_USER_INPUT naming `field` if it holds control or bidi characters. */
export function requirePlainText(value: string, field: string): string {
  if (CONTROL_OR_BIDI.test(value))
    throw AppError.badInput(
      field,
      'must not contain control or bidirectional formatting characters',
    );
  return value;
}

// NUL, or a UTF-16 surrogate not in a pair (in `u` mode a pair is one code point, not \p{Cs}).
const ILL_FORMED = /[\0\p{Cs}]/u;

/**
 * Where in `value` (a request's variables, say) a string holds a NUL character or an unpaired
 * UTF-16 surrogate, which no field accepts and PostgreSQL cannot store; undefined when none.
 */
export function findIllFormedText(value: unknown, path = ''): string | undefined {
  // Depth-first with an explicit stack: a hostile, deeply nested value cannot exhaust the
  // call stack (that would be a server error for a client's fault).
  const pending: [unknown, string][] = [[value, path]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, at] = next;
    if (typeof item === 'string') {
      if (ILL_FORMED.test(item)) return at || '(value)';
    } else if (Array.isArray(item)) {
      for (let index = item.length - 1; index >= 0; index--)
        pending.push([item[index], `${at}[${index}]`]);
    } else if (item && typeof item === 'object') {
      for (const [key, child] of Object.entries(item).reverse()) {
        const childPath = at ? `${at}.${key}` : key;
        if (ILL_FORMED.test(key)) return childPath;
        pending.push([child, childPath]);
      }
    }
  }
  return undefined;
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
