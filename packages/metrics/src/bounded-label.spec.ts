import { describe, expect, it } from 'vitest';
import { boundedLabel } from './bounded-label';

describe('boundedLabel', () => {
  it('keeps the first names, then reports new ones as other', () => {
    const label = boundedLabel({ max: 2 });
    expect(label('Me')).toBe('Me');
    expect(label('Users')).toBe('Users');
    expect(label('Third')).toBe('other');
    // Names already kept stay themselves.
    expect(label('Me')).toBe('Me');
    expect(label('Users')).toBe('Users');
  });

  it('names absent values and refuses what is not an identifier', () => {
    const label = boundedLabel({ max: 10 });
    expect(label(undefined)).toBe('anonymous');
    expect(label(null)).toBe('anonymous');
    expect(label('')).toBe('anonymous');
    expect(label('query { me { id } }')).toBe('invalid');
    expect(label('user@example.com')).toBe('invalid');
    expect(label('x'.repeat(101))).toBe('invalid');
    // Refused values do not use up the budget.
    for (let n = 0; n < 10; n++) expect(label(`Op${n}`)).toBe(`Op${n}`);
    expect(label('Op10')).toBe('other');
  });
});
