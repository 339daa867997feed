import { describe, expect, it } from 'vitest';
import { notificationV1 } from '@platform/proto';
import { MAX_DATA_DEPTH, requireSendableData } from './notification-data';

/** `levels` containers, alternating objects and arrays, around a leaf. */
function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < levels; level++) value = level % 2 ? [value] : { inner: value };
  return value;
}

/** The data as the notification service receives it. */
function sent(data: unknown): unknown {
  const request = { senderId: '', recipientId: '', type: 'note', title: 'Hi', body: '', data };
  const wire = notificationV1.SendNotificationRequest.encode(request).finish();
  return notificationV1.SendNotificationRequest.decode(wire).data;
}

describe(requireSendableData.name, () => {
  it('passes data as deep as the service can receive, and the service receives it whole', () => {
    const deepest = nested(MAX_DATA_DEPTH);
    expect(requireSendableData(deepest)).toBe(deepest);
    expect(sent(deepest)).toEqual(deepest);
    const objects: unknown = JSON.parse(
      `${'{"a":'.repeat(MAX_DATA_DEPTH)}1${'}'.repeat(MAX_DATA_DEPTH)}`,
    );
    expect(sent(requireSendableData(objects))).toEqual(objects);
  });

  it('refuses data nested one level deeper, naming the field', () => {
    expect(() => requireSendableData(nested(MAX_DATA_DEPTH + 1))).toThrow(
      /^data: must nest at most 32 levels deep$/,
    );
  });

  it('sends no data for none, and JSON values of every kind as they are', () => {
    expect(requireSendableData(undefined)).toBeUndefined();
    expect(requireSendableData(null)).toBeUndefined();
    for (const data of ['text', 7.5, false, [1, 'a', null], { a: { b: null } }])
      expect(sent(requireSendableData(data))).toEqual(data);
  });
});
