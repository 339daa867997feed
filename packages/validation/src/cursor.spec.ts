import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor';

describe('keyset cursors', () => {
  it('round-trip a position', () => {
    const position = {
      createdAt: new Date('2026-01-02T03:04:05.678Z'),
      id: '5b0e9f1c-0000-4000-8000-000000000001',
    };
    expect(decodeCursor(encodeCursor(position))).toEqual(position);
  });

  it('refuse a cursor that is not one of ours, naming the argument', () => {
    expect(() => decodeCursor('not-a-cursor')).toThrow(/^after: is not a valid cursor$/);
    expect(() => decodeCursor(Buffer.from('yesterday|x').toString('base64url'), 'before')).toThrow(
      /^before: /,
    );
  });
});
