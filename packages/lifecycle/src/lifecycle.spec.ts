import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createLifecycle } from './lifecycle';

const logger = createLogger({ name: 'test', level: 'silent' });

describe('createLifecycle', () => {
  it('tears resources down in reverse order of creation, then exits 0', async () => {
    const order: string[] = [];
    const exits: number[] = [];
    const lifecycle = createLifecycle({ logger, drainTimeoutMs: 1000, exit: (c) => exits.push(c) });
    lifecycle.onShutdown('database', () => void order.push('database'));
    lifecycle.onShutdown('server', async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      order.push('server');
    });
    await lifecycle.shutdown('test');
    expect(order).toEqual(['server', 'database']);
    expect(exits).toEqual([0]);
  });

  it('keeps tearing down after a failure and then exits non-zero', async () => {
    const order: string[] = [];
    const exits: number[] = [];
    const lifecycle = createLifecycle({ logger, drainTimeoutMs: 1000, exit: (c) => exits.push(c) });
    lifecycle.onShutdown('first', () => void order.push('first'));
    lifecycle.onShutdown('broken', () => {
      throw new Error('boom');
    });
    await lifecycle.shutdown('test');
    expect(order).toEqual(['first']);
    expect(exits).toEqual([1]);
  });

  it('exits non-zero when teardown outlasts the drain timeout', async () => {
    const exits: number[] = [];
    const lifecycle = createLifecycle({ logger, drainTimeoutMs: 20, exit: (c) => exits.push(c) });
    lifecycle.onShutdown('stuck', () => new Promise(() => undefined));
    await lifecycle.shutdown('test');
    expect(exits).toEqual([1]);
  });

  it('shuts down once however often it is asked', async () => {
    const exits: number[] = [];
    const lifecycle = createLifecycle({ logger, drainTimeoutMs: 100, exit: (c) => exits.push(c) });
    await Promise.all([lifecycle.shutdown('a'), lifecycle.shutdown('b')]);
    expect(exits).toEqual([0]);
  });
});
