import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createDocumentCache } from './document-cache';

const schema = buildSchema('type Query { a: Int b: Int } type Subscription { tick: Int }');

describe(createDocumentCache.name, () => {
  it('remembers valid texts only, and answers one it remembers with the same document', () => {
    const parse = createDocumentCache(schema);
    const first = parse('subscription { tick }');
    expect(parse.has('subscription { tick }')).toBe(true);
    expect(parse('subscription { tick }')).toBe(first);
    expect(parse('subscription { nope }')).toEqual([
      expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT' } }),
    ]);
    expect(parse.has('subscription { nope }')).toBe(false);
  });

  it('keeps the texts used last when full: a flood of new texts pushes out only the least used', () => {
    const parse = createDocumentCache(schema, { maxEntries: 3 });
    const popular = 'subscription { tick }';
    parse(popular);
    for (let n = 0; n < 10; n++) {
      parse(`query Q${n} { a }`);
      parse(popular); // everyone else's text, sent between the flood's
    }
    expect(parse.has(popular)).toBe(true);
    expect(parse.has('query Q9 { a }')).toBe(true);
    expect(parse.has('query Q8 { a }')).toBe(true);
    expect(parse.has('query Q7 { a }')).toBe(false);
    // A text first seen once the cache is full is remembered too.
    parse('query Late { b }');
    expect(parse.has('query Late { b }')).toBe(true);
  });
});
