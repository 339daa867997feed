import { describe, expect, it } from 'vitest';
import {
  findIllFormedText,
  isCommonPassword,
  validateDisplayName,
  validateEmail,
  validatePassword,
} from './rules';

describe('validateEmail', () => {
  it('normalises case and surrounding space', () => {
    expect(validateEmail('  Ada@Example.COM ')).toBe('ada@example.com');
  });
  it('spells an address one way whatever its Unicode normalisation form', () => {
    const nfd = 'jose\u0301@example.com';
    expect(validateEmail(nfd)).toBe(validateEmail('jos\u00e9@example.com'));
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

describe('validateDisplayName refuses spoofing characters', () => {
  it.each([
    ['a right-to-left override', 'evil\u202Egnp.exe'],
    ['a bidirectional isolate', 'admin\u2066x'],
    ['a control character', 'line\nbreak'],
  ])('refuses %s, naming the field', (_what, name) =>
    expect(() => validateDisplayName(name)).toThrow(/^displayName: must not contain control/),
  );
  it('accepts names in any script', () => {
    expect(validateDisplayName('مريم')).toBe('مريم');
    expect(validateDisplayName('Zoë 👩‍💻')).toBe('Zoë 👩‍💻');
  });
});

describe('findIllFormedText', () => {
  it('finds a NUL or an unpaired surrogate anywhere in variables, by path', () => {
    expect(findIllFormedText({ input: { title: 'ok', body: 'a\u0000b' } })).toBe('input.body');
    expect(findIllFormedText({ list: ['fine', 'x\uD800'] })).toBe('list[1]');
    expect(findIllFormedText({ ['k\uDC00']: 1 })).toBe('k\uDC00');
  });
  it('walks a hostile, deeply nested value without running out of stack', () => {
    let deep: unknown = 'bottom\u0000';
    for (let level = 0; level < 100_000; level++) deep = [deep];
    expect(findIllFormedText({ d: deep })).toMatch(/^d(\[0\]){100000}$/);
  });

  it('accepts well-formed text, emoji included', () => {
    expect(
      findIllFormedText({ title: 'Hello 👋', n: 3, nested: [null, { a: 'é' }] }),
    ).toBeUndefined();
  });
});
