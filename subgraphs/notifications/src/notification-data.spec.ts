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
  const request = {
    senderId: '',
    recipientId: '',
    type: 'note',
    title: 'Hi',
    body: '',
    data,
    idempotencyKey: '',
  };
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

  it('refuses a key named __proto__ at any depth, which the service would lose, naming the field', () => {
    for (const json of [
      '{"__proto__":{"isAdmin":true}}',
      '{"a":[1,{"b":{"__proto__":null}}]}',
      '[{"__proto__":1}]',
    ]) {
      const data: unknown = JSON.parse(json);
      expect(() => requireSendableData(data)).toThrow(/^data: must not use the key "__proto__"$/);
    }
    // Without the check, the key would be gone: the service receives an empty object.
    expect(sent(JSON.parse('{"__proto__":{"isAdmin":true}}'))).toEqual({});
    // Its look-alikes are plain keys, and arrive.
    const lookalikes: unknown = JSON.parse('{"constructor":{"prototype":{"x":1}},"__proto":2}');
    expect(sent(requireSendableData(lookalikes))).toEqual(lookalikes);
  });

  it('sends no data for none, and JSON values of every kind as they are', () => {
    expect(requireSendableData(undefined)).toBeUndefined();
    expect(requireSendableData(null)).toBeUndefined();
    for (const data of ['text', 7.5, false, [1, 'a', null], { a: { b: null } }])
      expect(sent(requireSendableData(data))).toEqual(data);
  });
});
