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

  describe('notification.created', () => {
    const created = (change: { data?: unknown; createdAt?: Date } = {}) =>
      createEvent('notification.created', {
        id: 'n1',
        recipientId: 'u1',
        type: 'invoice.paid',
        title: 'Paid',
        body: '',
        data: change.data,
        createdAt: change.createdAt ?? new Date(),
      });
    /** What a consumer reads from the broker. */
    const received = (event: object) => parseEvent(JSON.parse(JSON.stringify(event)));

    it('carries a new notification whole, its time back as a Date and its data as sent', () => {
      const createdAt = new Date('2026-01-02T03:04:05.678Z');
      const event = created({ data: { invoice: 42, lines: [1, 2], note: null }, createdAt });
      expect(received(event)).toEqual(event);
      expect(received(event).payload).toMatchObject({ createdAt });
    });

    it('reads one sent without data as one whose data is null', () => {
      expect(received(created()).payload).toMatchObject({ data: null });
    });

    it('refuses one whose time is not an ISO-8601 time', () => {
      const wire = JSON.parse(JSON.stringify(created())) as { payload: Record<string, unknown> };
      expect(() =>
        received({ ...wire, payload: { ...wire.payload, createdAt: 'yesterday' } }),
      ).toThrow();
    });
  });

  it('refuses an unknown type, a wrong version and a payload that breaks the contract', () => {
    const event = createEvent('user.deleted', { userId: 'u1' });
    expect(() => parseEvent({ ...event, type: 'user.exploded' })).toThrow();
    expect(() => parseEvent({ ...event, version: 2 })).toThrow(/unsupported version/);
    expect(() => parseEvent({ ...event, payload: {} })).toThrow();
  });
});
