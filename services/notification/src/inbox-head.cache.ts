import type { Notification } from '@platform/db';
import type { Logger } from '@platform/logger';
import { cacheMetrics } from '@platform/metrics';
import { createReadThroughCache, type Redis } from '@platform/redis';
import type { InboxHead } from './notification.repository';

/** How many of the newest notifications an inbox head holds (fewer when they are large). */
export const INBOX_HEAD_SIZE = 20;
/** Roughly the most an inbox head takes in Redis: its newest notifications stop there. */
const INBOX_HEAD_MAX_CHARS = 32 * 1024;

/**
 * Each recipient's inbox head (counts and newest notifications) cached in Redis, what every
 * page of notifications and unread count opens with. Anything that changes a recipient's
 * notifications calls `forget` after it committed. A head read before such a change is never
 * cached after it (see ReadThroughCache); a forget that fails is logged, and the head may then
 * be behind for up to its TTL of one minute (it gates nothing, and shows the recipient only
 * their own notifications).
 */
export interface InboxHeadCache {
  get(recipientId: string, load: () => Promise<InboxHead>): Promise<InboxHead>;
  forget(recipientId: string): Promise<void>;
}

/**
 * The head as Redis keeps it: its newest notifications stop before INBOX_HEAD_MAX_CHARS (a
 * head with fewer of them than its total says so, and larger pages are read from PostgreSQL).
 */
export function encodeInboxHead(head: InboxHead): string {
  const rows: string[] = [];
  let chars = 0;
  for (const notification of head.newest) {
    const row = JSON.stringify(notification);
    chars += row.length + 1;
    if (chars > INBOX_HEAD_MAX_CHARS) break;
    rows.push(row);
  }
  return `{"total":${head.total},"unread":${head.unread},"newest":[${rows.join(',')}]}`;
}

export function decodeInboxHead(text: string): InboxHead {
  const head = JSON.parse(text) as {
    total: number;
    unread: number;
    newest: (Omit<Notification, 'readAt' | 'createdAt'> & {
      readAt: string | null;
      createdAt: string;
    })[];
  };
  return {
    total: head.total,
    unread: head.unread,
    newest: head.newest.map((notification) => ({
      ...notification,
      readAt: notification.readAt === null ? null : new Date(notification.readAt),
      createdAt: new Date(notification.createdAt),
    })),
  };
}

export function createInboxHeadCache(redis: Redis, logger: Logger): InboxHeadCache {
  const cache = createReadThroughCache<InboxHead>(redis, {
    logger,
    keyspace: 'notifications:inbox',
    ttlSeconds: 60,
    encode: encodeInboxHead,
    decode: decodeInboxHead,
    metrics: cacheMetrics('inbox_head'),
  });
  // Where unread counts were cached before inbox heads: instances of that version may still
  // run during a rollout, so every change forgets their entry too. Remove once none runs.
  const unreadCounts = createReadThroughCache<number>(redis, {
    logger,
    keyspace: 'notifications:unread',
    ttlSeconds: 300,
    encode: String,
    decode: Number,
  });
  return {
    async get(recipientId, load) {
      const heads = await cache.get(
        [recipientId],
        async () => new Map([[recipientId, await load()]]),
      );
      const head = heads.get(recipientId);
      if (!head) throw new Error('the inbox head was not loaded');
      return head;
    },
    async forget(recipientId) {
      await Promise.all([cache.forget(recipientId), unreadCounts.forget(recipientId)]);
    },
  };
}
