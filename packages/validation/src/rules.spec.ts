import { describe, expect, it } from 'vitest';
import {
  requireId,
  findIllFormedText,
  isCommonPassword,
  normalizeEmail,
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
  it.each([
    '',
    'ada',
    'ada@',
    '@example.com',
    'a b@example.com',
    `${'a'.repeat(250)}@x.io`,
    // The same mailbox as ada@example.com, or no domain at all.
    'ada@example.com.',
    'ada@example.com\u3002', // the ideographic full stop, which IDNA reads as "."
    'ada@example\uFF0E\u3002com',
    'ada@.example.com',
    'ada@example..com',
    'ada@example',
  ])('refuses %j naming the field', (email) =>
    expect(() => validateEmail(email)).toThrow(/^email: must be a valid email address$/),
  );
  it('folds fullwidth and other compatibility forms to the address they show, as a lookup does', () => {
    // The same account as admin@example.com: registering it again is a duplicate.
    expect(validateEmail('ａｄｍｉｎ@example.com')).toBe('admin@example.com');
    expect(validateEmail('ＡＤＭＩＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ')).toBe('admin@example.com');
    expect(validateEmail('\uFB01nance@example.com')).toBe('finance@example.com'); // the "ﬁ" ligature
    // A domain's full stops in other scripts are the dot IDNA and mailers read them as.
    expect(validateEmail('ada@mail\u3002example\uFF61com')).toBe('ada@mail.example.com');
    // Sign-in and lookups spell it the same way.
    expect(normalizeEmail(' ＡＤＭＩＮ@Example.com ')).toBe('admin@example.com');
  });
  it('accepts addresses in any script, and the characters real addresses use', () => {
    for (const email of [
      'josé@exämple.de',
      'jose\u0301@exa\u0308mple.de',
      'пример@пример.рф',
      '用户@例子.广告',
      'δοκιμή@παράδειγμα.ελ',
      "o'neil+tag@example.co.uk",
      'first.last-name_1@sub.example.org',
    ])
      expect(validateEmail(email), email).toBe(email.normalize('NFC'));
  });
});

describe('validateEmail refuses addresses that show as another', () => {
  it.each([
    ['a zero-width space after the address', 'admin@example.com\u200b'],
    ['a zero-width space inside', 'ad\u200bmin@example.com'],
    ['a zero-width joiner', 'ad\u200dmin@example.com'],
    ['a word joiner', 'admin@exam\u2060ple.com'],
    ['a byte order mark inside', 'ad\ufeffmin@example.com'],
    ['a soft hyphen', 'ad\u00admin@example.com'],
    ['a bell', 'ad\u0007min@example.com'],
    ['a NUL', 'ad\u0000min@example.com'],
    ['a newline inside', 'admin@exam\nple.com'],
    ['an escape', 'a\u001b[31m@x.com'],
    ['DEL', 'a\u007f@x.com'],
    ['a C1 control', 'a\u0085b@x.com'],
    ['a right-to-left override', 'ad\u202emin@example.com'],
    ['a left-to-right mark', 'admin\u200e@example.com'],
    ['an Arabic letter mark', 'admin@\u061cexample.com'],
    ['a bidirectional isolate', 'ad\u2066min@example.com'],
    ['angle brackets', '<a@x.com>'],
    ['a display name', 'Admin <a@x.com>'],
    ['parentheses (a comment)', 'a(comment)@x.com'],
    ['square brackets', 'a@[127.0.0.1].com'],
    ['a backslash', 'a\\b@x.com'],
    ['a comma', 'a,b@x.com'],
    ['a semicolon', 'a;b@x.com'],
    ['a colon', 'a:b@x.com'],
    ['a double quote', '"a"@x.com'],
    ['a second "@"', 'a@b@x.com'],
    ['a tab inside', 'a\tb@x.com'],
    ['a no-break space inside', 'a\u00a0b@x.com'],
    ['an ideographic space inside', 'a\u3000b@x.com'],
    ['a line separator inside', 'a\u2028b@x.com'],
    ['a fullwidth angle bracket', '＜a@x.com＞'],
    ['a small commercial at', 'a﹫b@x.com'],
  ])('refuses %s, naming the field', (_what, email) =>
    expect(() => validateEmail(email)).toThrow(/^email: must be a valid email address$/),
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

describe('requireId', () => {
  it('takes an id as the platform spells it, and refuses another spelling or anything else', () => {
    const id = '0b6f6a4e-2b8e-4c1e-9d3a-5f7c8e9a1b2c';
    expect(requireId('userId', id)).toBe(id);
    // One spelling: an upper-case copy would be another key in every cache and lookup by text.
    for (const other of [id.toUpperCase(), `{${id}}`, id.replaceAll('-', ''), '', 'x'])
      expect(() => requireId('userId', other, 'user')).toThrow(
        expect.objectContaining({
          code: 'BAD_USER_INPUT',
          field: 'userId',
          message: 'userId: must be a user id',
        }),
      );
  });
});
