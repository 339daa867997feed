import { describe, expect, it } from 'vitest';
import {
  hashOpaqueToken,
  isOpaqueToken,
  newOpaqueToken,
  newSuccessorKey,
  successorOf,
} from './opaque-token';

describe('successorOf', () => {
  it('derives the same successor from the same token and key, every time', () => {
    const key = newSuccessorKey();
    const { token } = newOpaqueToken();
    expect(successorOf(token, key)).toEqual(successorOf(token, Uint8Array.from(key)));
  });

  it('derives another successor from another token or under another key', () => {
    const key = newSuccessorKey();
    const { token } = newOpaqueToken();
    const successor = successorOf(token, key).token;
    expect(successorOf(newOpaqueToken().token, key).token).not.toBe(successor);
    expect(successorOf(token, newSuccessorKey()).token).not.toBe(successor);
    expect(successor).not.toBe(token);
  });

  it('gives a token like any other, with the hash that is stored for it', () => {
    const successor = successorOf(newOpaqueToken().token, newSuccessorKey());
    expect(isOpaqueToken(successor.token)).toBe(true);
    expect(successor.hash).toBe(hashOpaqueToken(successor.token));
  });
});
