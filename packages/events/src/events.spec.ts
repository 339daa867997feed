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

  it('carries a new notification whole, its time back as a Date and its data as sent', () => {
    const event = createEvent('notification.created', {
      id: 'n1',
      recipientId: 'u1',
      type: 'invoice.paid',
      title: 'Paid',
      body: '',
      data: { invoice: 42, lines: [1, 2], note: null },
      createdAt: new Date('2026-01-02T03:04:05.678Z'),
    });
    const received = parseEvent(JSON.parse(JSON.stringify(event)));
    expect(received).toEqual(event);
    expect(received.payload).toMatchObject({ createdAt: new Date('2026-01-02T03:04:05.678Z') });
  });

  it('reads a notification.created without data as one whose data is null', () => {
    const event = createEvent('notification.created', {
      id: 'n1',
      recipientId: 'u1',
      type: 'note',
      title: 'Hi',
      body: '',
      data: undefined,
      createdAt: new Date(),
    });
    expect(parseEvent(JSON.parse(JSON.stringify(event))).payload).toMatchObject({ data: null });
  });

  it('refuses a notification.created whose time is not an ISO-8601 time', () => {
    const event = createEvent('notification.created', {
      id: 'n1',
      recipientId: 'u1',
      type: 'note',
      title: 'Hi',
      body: '',
      data: null,
      createdAt: new Date(),
    });
    const wire = JSON.parse(JSON.stringify(event)) as { payload: Record<string, unknown> };
    expect(parseEvent(wire).payload).toMatchObject({ data: null });
    expect(() =>
      parseEvent({ ...wire, payload: { ...wire.payload, createdAt: 'yesterday' } }),
    ).toThrow();
  });

  it('refuses an unknown type, a wrong version and a payload that breaks the contract', () => {
    const event = createEvent('user.deleted', { userId: 'u1' });
    expect(() => parseEvent({ ...event, type: 'user.exploded' })).toThrow();
    expect(() => parseEvent({ ...event, version: 2 })).toThrow(/unsupported version/);
    expect(() => parseEvent({ ...event, payload: {} })).toThrow();
  });
});
