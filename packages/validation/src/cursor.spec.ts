import { describe, expect, it } from 'vitest';
import { decodeCursor, decodeSequenceCursor, encodeCursor, encodeSequenceCursor } from './cursor';

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

  it.each([
    ['a time before any row', '-271821-04-20T00:00:00.000Z|5b0e9f1c-0000-4000-8000-000000000001'],
    ['a time after any row', '+275760-09-13T00:00:00.000Z|5b0e9f1c-0000-4000-8000-000000000001'],
    ['a loosely written time', '2026|5b0e9f1c-0000-4000-8000-000000000001'],
    ['an id that is not a UUID', '2026-01-02T03:04:05.678Z|1 OR 1=1'],
    ['extra parts', '2026-01-02T03:04:05.678Z|5b0e9f1c-0000-4000-8000-000000000001|x'],
  ])('refuse a cursor with %s (it would fail in PostgreSQL)', (_what, text) => {
    expect(() => decodeCursor(Buffer.from(text).toString('base64url'))).toThrow(
      /^after: is not a valid cursor$/,
    );
  });
});

describe('sequence cursors', () => {
  it('round-trip a sequence number, up to the largest bigint PostgreSQL stores', () => {
    for (const seq of [0n, 1n, 42n, 9_223_372_036_854_775_807n])
      expect(decodeSequenceCursor('audit', encodeSequenceCursor('audit', seq))).toBe(seq);
  });

  it('keep the format cursors already handed out have: base64url of kind:number', () => {
    expect(encodeSequenceCursor('audit', 17n)).toBe(Buffer.from('audit:17').toString('base64url'));
  });

  it('refuse a cursor of another kind, a keyset cursor or garbage, naming the argument', () => {
    const others = [
      encodeSequenceCursor('other', 1n),
      encodeCursor({ createdAt: new Date(), id: '5b0e9f1c-0000-4000-8000-000000000001' }),
      'not-a-cursor',
      '',
      Buffer.from('audit:').toString('base64url'),
      Buffer.from('audit:-1').toString('base64url'),
      Buffer.from('audit:1x').toString('base64url'),
      Buffer.from(`audit:${'9'.repeat(19)}`).toString('base64url'),
      Buffer.from(`audit:${'9'.repeat(20)}`).toString('base64url'),
    ];
    for (const cursor of others)
      expect(() => decodeSequenceCursor('audit', cursor)).toThrow(/^after: is not a valid cursor$/);
    expect(() => decodeSequenceCursor('audit', 'x', 'before')).toThrow(/^before: /);
  });

  it('refuse to make a cursor of a number out of range or a malformed kind', () => {
    expect(() => encodeSequenceCursor('audit', -1n)).toThrow();
    expect(() => encodeSequenceCursor('audit', 9_223_372_036_854_775_808n)).toThrow();
    expect(() => encodeSequenceCursor('Audit:x', 1n)).toThrow();
  });
});
