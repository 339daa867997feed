import { parseValue } from 'graphql';
import { describe, expect, it } from 'vitest';
import { JSONScalar } from './scalars';

describe('JSONScalar', () => {
  it('reads a literal with variables in it as the value it writes', () => {
    const literal = parseValue(
      '{ a: $text, b: [$number, 1, null], c: $missing, d: RED, e: { f: 1.5 } }',
    );
    expect(JSONScalar.parseLiteral(literal, { text: 'x', number: 2 })).toEqual({
      a: 'x',
      b: [2, 1, null],
      d: 'RED',
      e: { f: 1.5 },
    });
    expect(JSONScalar.parseLiteral(parseValue('[$missing, true]'), {})).toEqual([null, true]);
  });
});
