import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { eventually, startRedisServer } from '@platform/testing';
import { createRedis } from './redis';
import { serverRunOf } from './server-run';

const keyPrefix = `test:server-run-${randomBytes(4).toString('hex')}:`;
const logger = createLogger({ name: 'server-run-test', level: 'silent' });

describe('serverRunOf', () => {
  it('is another run after a failback to a primary that was a replica meanwhile', async () => {
    const [primary, other] = [await startRedisServer(), await startRedisServer()];
    const redis = await createRedis({ url: primary.url, keyPrefix, logger });
    const admin = await createRedis({ url: primary.url, keyPrefix, logger });
    try {
      const run = serverRunOf(redis);
      const before = await run.current();
      expect(await run.current()).toBe(before);
      // A failover made it a replica of the other server, then a failback its primary again:
      // the same process (run_id), its data taken again from the other one meanwhile.
      await admin.replicaof('127.0.0.1', other.port);
      await eventually(async () =>
        expect(await admin.info('replication')).toMatch(/master_link_status:up/),
      );
      await admin.replicaof('NO', 'ONE');
      // Clients are moved over on a failover (Sentinel kills their connections).
      redis.disconnect(true);
      await eventually(async () => expect(await redis.ping()).toBe('PONG'));
      const after = await run.current();
      expect(after.split('.')[0]).toBe(before.split('.')[0]);
      expect(after).not.toBe(before);
    } finally {
      redis.disconnect();
      admin.disconnect();
      await Promise.all([primary.stop(), other.stop()]);
    }
  });
});
