import { describe, expect, it } from 'vitest';
import { validateDisplayName, validateEmail, validatePassword } from './rules';

describe('validateEmail', () => {
  it('normalises case and surrounding space', () => {
    expect(validateEmail('  Ada@Example.COM ')).toBe('ada@example.com');
  });
  it.each(['', 'ada', 'ada@', '@example.com', 'a b@example.com', `${'a'.repeat(250)}@x.io`])(
    'refuses %j naming the field',
    (email) => expect(() => validateEmail(email)).toThrow(/^email: must be a valid email address$/),
  );
});

describe('validatePassword', () => {
  it('accepts 8 to 128 characters of anything, counting characters not bytes', () => {
    expect(validatePassword('12345678')).toBe('12345678');
    expect(validatePassword('ü'.repeat(128))).toBe('ü'.repeat(128));
  });
  it.each(['1234567', 'x'.repeat(129)])('refuses a password of %j.length characters', (password) =>
    expect(() => validatePassword(password)).toThrow(/^password: must be 8 to 128 characters$/),
  );
});

describe('validateDisplayName', () => {
  it('trims, and refuses empty or over 100 characters', () => {
    expect(validateDisplayName('  Ada  ')).toBe('Ada');
    expect(() => validateDisplayName('   ')).toThrow(/^displayName: /);
    expect(() => validateDisplayName('x'.repeat(101))).toThrow(/^displayName: /);
  });
});
