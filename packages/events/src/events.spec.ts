import { describe, expect, it } from 'vitest';
import { createEvent, parseEvent } from './events';

describe('event contracts', () => {
  it('round-trips an event through JSON', () => {
    const event = createEvent('user.registered', {
      userId: 'u1',
      email: 'a@b.c',
      displayName: 'A',
    });
    expect(parseEvent(JSON.parse(JSON.stringify(event)))).toEqual(event);
  });

  it('refuses an unknown type, a wrong version and a payload that breaks the contract', () => {
    const event = createEvent('user.deleted', { userId: 'u1' });
    expect(() => parseEvent({ ...event, type: 'user.exploded' })).toThrow();
    expect(() => parseEvent({ ...event, version: 2 })).toThrow(/unsupported version/);
    expect(() => parseEvent({ ...event, payload: {} })).toThrow();
  });
});
