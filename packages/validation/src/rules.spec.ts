import { describe, expect, it } from 'vitest';
import { isCommonPassword, validateDisplayName, validateEmail, validatePassword } from './rules';

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
    expect(validatePassword('zq8#mw2!')).toBe('zq8#mw2!');
    expect(validatePassword('ü'.repeat(128))).toBe('ü'.repeat(128));
  });
  it.each(['1234567', 'x'.repeat(129)])('refuses a password of %j.length characters', (password) =>
    expect(() => validatePassword(password)).toThrow(/^password: must be 8 to 128 characters$/),
  );
});

describe('the common-password rule', () => {
  it('knows at least the 10,000 most common passwords, whatever their case', () => {
    expect(isCommonPassword('password')).toBe(true);
    expect(isCommonPassword('PASSWORD1')).toBe(true);
    expect(isCommonPassword('sunshine')).toBe(true);
    expect(isCommonPassword('correct horse battery')).toBe(false);
  });
  it('refuses a common password of a valid length, naming the field', () => {
    expect(() => validatePassword('iloveyou1')).toThrow(
      /^password: is too common; choose another$/,
    );
    expect(() => validatePassword('Qwertyuiop')).toThrow(/^password: is too common/);
  });
});

describe('validateDisplayName', () => {
  it('trims, and refuses empty or over 100 characters', () => {
    expect(validateDisplayName('  Ada  ')).toBe('Ada');
    expect(() => validateDisplayName('   ')).toThrow(/^displayName: /);
    expect(() => validateDisplayName('x'.repeat(101))).toThrow(/^displayName: /);
  });
});
