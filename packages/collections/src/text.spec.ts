import { describe, expect, it } from 'vitest';
import { shortened } from './text';

describe(shortened.name, () => {
  it('keeps a text that fits', () => {
    expect(shortened('abc', 3)).toBe('abc');
    expect(shortened('', 1)).toBe('');
  });

  it('cuts a longer one to the bound, the ellipsis included', () => {
    expect(shortened('abcdef', 4)).toBe('abc…');
    expect(shortened('x'.repeat(2_000), 1_000)).toHaveLength(1_000);
  });

  it('never ends in half a surrogate pair', () => {
    // '😀' is two code units: cutting after the first would leave a lone high surrogate.
    const cut = shortened(`ab😀${'z'.repeat(10)}`, 4);
    expect(cut).toBe('ab…');
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(shortened(`abc😀${'z'.repeat(10)}`, 6)).toBe('abc😀…');
  });
});
