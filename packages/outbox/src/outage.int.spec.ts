import { Writable } from 'node:stream';
import { connect as connectAmqp } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { createEvent, type EventEnvelope } from '@platform/events';
import { createLogger, type Logger } from '@platform/logger';
import { createMessageBroker, type MessageBroker } from '@platform/messaging';
import {
  createTcpProxy,
  createTestRun,
  eventually,
  type TcpProxy,
  type TestRun,
} from '@platform/testing';
import { enqueueEvent, processOnce } from './outbox';
import { createOutboxRelay } from './outbox.relay';

// Outages of RabbitMQ and PostgreSQL, made with TCP proxies in front of the real servers:
// what was written or sent during the outage arrives once afterwards, nothing is
// dead-lettered for an outage, and nothing needs a restart.

const silent = createLogger({ name: 'outage-test', level: 'silent' });
const USER_ID = '00000000-0000-4000-8000-000000000002';
const OUTAGE_MS = 10_000;

/** A logger whose lines the test reads, as an operator reads the app's log. */
function capturingLogger(): { logger: Logger; messages: () => string[]; lines: () => string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return {
    logger: createLogger({ name: 'outage-test', level: 'info', destination }),
    messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg),
    lines: () => [...lines],
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Checks that a log tells of outages once each: a line when one begins and a line when it ends,
 * in turn, never a line per retry or poll. The outage the test makes is the first; a busy
 * machine's shared servers can add a short one of their own (a connection that outlasted its
 * timeout), which must be told the same way. The whole log is shown when the check fails.
 */
function expectOncePerOutage(
  log: ReturnType<typeof capturingLogger>,
  began: string,
  ended: string,
): void {
  const told = log
    .messages()
    .filter((msg) => msg.startsWith(began) || msg.startsWith(ended))
    .map((msg) => (msg.startsWith(began) ? 'began' : 'ended'));
  const shown = log.lines().join('\n');
  expect(told.length, shown).toBeGreaterThanOrEqual(2);
  expect(told, shown).toEqual(told.map((_, index) => (index % 2 === 0 ? 'began' : 'ended')));
  // ... and the last outage told has ended.
  expect(told.at(-1), shown).toBe('ended');
}

describe('events through broker and database outages', () => {
  let run: TestRun;
  let db: Database;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    run = await createTestRun();
    db = await connectDatabase({ databaseUrl: run.databaseUrl });
  });

  afterAll(async () => {
    for (const close of closers.toReversed()) await close().catch(() => undefined);
    await db.$disconnect();
    await run.close();
  });

  async function proxyTo(
    url: string,
    defaultPort: number,
  ): Promise<{ proxy: TcpProxy; url: string }> {
    const target = new URL(url);
    const proxy = await createTcpProxy({
      host: target.hostname,
      port: Number(target.port || defaultPort),
    });
    closers.push(() => proxy.close());
    target.port = String(proxy.port);
    return { proxy, url: target.toString() };
  }

  async function broker(url = run.rabbitmqUrl, logger = silent): Promise<MessageBroker> {
    // The production reconnect back-off: recovery must be quick without test tuning.
    const created = await createMessageBroker({
      url,
      exchange: run.exchange,
      logger,
      queueExpiresMs: 60_000,
    });
    closers.push(() => created.close());
    return created;
  }

  async function database(url: string): Promise<Database> {
    const created = await connectDatabase({ databaseUrl: url });
    closers.push(() => created.$disconnect());
    return created;
  }

  /** The effect of handling an event: one notification row, recorded with the event id. */
  async function applyEffect(on: Database, consumer: string, event: EventEnvelope): Promise<void> {
    await on.$transaction(async (tx) => {
      if (!(await processOnce(tx, 'notifications', consumer, event.id))) return;
      await tx.notification.create({
        data: { recipientId: USER_ID, type: consumer, title: event.id, body: '' },
      });
    });
  }

  async function effects(consumer: string): Promise<string[]> {
    const rows = await db.notification.findMany({ where: { type: consumer } });
    return rows.map((row) => row.title).sort();
  }

  async function deadLettered(queue: string): Promise<number> {
    const connection = await connectAmqp(run.rabbitmqUrl);
    try {
      const channel = await connection.createChannel();
      return (await channel.checkQueue(`${queue}.dlq`)).messageCount;
    } finally {
      await connection.close();
    }
  }

  const registered = (n: number) =>
    createEvent('user.registered', {
      userId: USER_ID,
      email: `u${n}@example.com`,
      displayName: `U${n}`,
    });

  it('publishes every event written during a 10 s broker cut once afterwards; the live queue receives again', async () => {
    const consumer = 'broker-cut';
    const queue = `${run.exchange}.${consumer}`;
    const { proxy, url } = await proxyTo(run.rabbitmqUrl, 5672);
    const log = capturingLogger();

    // A durable consumer and an instance's live queue, both through the proxy.
    const subscriber = await broker(url, log.logger);
    const received: string[] = [];
    await subscriber.consume({
      queue,
      events: ['user.registered'],
      handle: async (event) => {
        received.push(event.id);
        await applyEffect(db, consumer, event);
      },
    });
    const live: string[] = [];
    await subscriber.consume({
      queue: `${run.exchange}.live.${consumer}`,
      events: ['user.registered'],
      ephemeral: true,
      handle: async (event) => void live.push(event.id),
    });
    const publisher = await broker(url);
    const relay = createOutboxRelay({ db, schema: 'users', broker: publisher, logger: silent });
    closers.push(() => relay.stop());

    const before = registered(0);
    await db.$transaction((tx) => enqueueEvent(tx, 'users', before));
    relay.kick();
    await eventually(async () => {
      expect(live).toContain(before.id);
      expect(await effects(consumer)).toEqual([before.id]);
    });

    proxy.cut();
    await eventually(() => expect(publisher.isConnected()).toBe(false));
    // A publish while disconnected is a dependency outage, answered as such.
    await expect(publisher.publish(registered(99))).rejects.toMatchObject({
      name: 'DependencyUnavailableError',
      dependency: 'rabbitmq',
    });
    const during = Array.from({ length: 20 }, (_, index) => registered(index + 1));
    for (const event of during) {
      await db.$transaction((tx) => enqueueEvent(tx, 'users', event));
      relay.kick();
    }
    await pause(OUTAGE_MS); // the outage itself
    const waiting = await db.userOutboxEvent.count({
      where: { id: { in: during.map((event) => event.id) }, publishedAt: null },
    });
    expect(waiting).toBe(during.length);

    proxy.restore();
    const all = [before, ...during].map((event) => event.id);
    await eventually(async () => {
      expect(await effects(consumer)).toEqual([...all].sort());
    }, 20_000);
    // Every row is marked published, and every event reached the consumer. Its effect is there
    // once (above); a delivery may come twice, as promised (at least once): a confirm or an ack
    // lost, or a handler's transaction timed out on a busy machine, is retried by design.
    expect(await db.userOutboxEvent.count({ where: { id: { in: all }, publishedAt: null } })).toBe(
      0,
    );
    expect(new Set(received)).toEqual(new Set(all));

    // The live queue (exclusive, gone with the old connection) is declared again: an event
    // published now reaches the instance.
    const direct = await broker();
    await eventually(async () => {
      const probe = registered(100);
      await direct.publish(probe);
      await eventually(() => expect(live).toContain(probe.id), 1_000);
    }, 15_000);
    expect(
      log.messages().filter((msg) => msg.includes('connection lost')),
      log.lines().join('\n'),
    ).toHaveLength(1);
  }, 60_000);

  it('keeps a message through a 10 s database outage: handled once after, never dead-lettered', async () => {
    const consumer = 'db-cut';
    const queue = `${run.exchange}.${consumer}`;
    const { proxy, url } = await proxyTo(run.databaseUrl, 5432);
    const proxiedDb = await database(url);
    const log = capturingLogger();
    const subscriber = await broker(run.rabbitmqUrl, log.logger);
    const calls = new Map<string, number>();
    const first = registered(200);
    await subscriber.consume({
      queue,
      events: ['user.registered'],
      // Counted as attempts, failures would dead-letter a message within 150 ms.
      retryDelaysMs: [50, 100],
      handle: async (event) => {
        calls.set(event.id, (calls.get(event.id) ?? 0) + 1);
        await applyEffect(proxiedDb, consumer, event);
        if (event.id === first.id && calls.get(event.id) === 1) {
          // The database goes away right after this event's effect committed, before the
          // handler finished: its next query fails, and the message is retried.
          proxy.cut();
          await proxiedDb.$queryRawUnsafe('SELECT 1');
        }
      },
    });
    const publisher = await broker();
    await publisher.publish(first);
    await eventually(() => expect(calls.get(first.id)).toBeGreaterThanOrEqual(2));
    const during = Array.from({ length: 5 }, (_, index) => registered(201 + index));
    for (const event of during) await publisher.publish(event);
    await pause(OUTAGE_MS); // the outage itself
    // Every message was tried again and again during the outage, more often than its attempts.
    for (const event of during) expect(calls.get(event.id)).toBeGreaterThan(3);

    proxy.restore();
    const all = [first, ...during].map((event) => event.id);
    await eventually(async () => expect(await effects(consumer)).toEqual([...all].sort()), 20_000);
    expect(await deadLettered(queue)).toBe(0);
    expectOncePerOutage(
      log,
      'a dependency is unavailable; events wait for it without using up attempts',
      'consumer recovered from a dependency outage',
    );
    expect(log.messages().filter((msg) => msg.includes('dead-lettered'))).toEqual([]);
  }, 60_000);

  it('still dead-letters a message that fails for itself, while outages do not count', async () => {
    const queue = `${run.exchange}.genuine`;
    const subscriber = await broker();
    let attempts = 0;
    await subscriber.consume({
      queue,
      events: ['user.registered'],
      retryDelaysMs: [50, 100],
      handle: () => {
        attempts += 1;
        return Promise.reject(new Error('cannot handle this event'));
      },
    });
    await (await broker()).publish(registered(300));
    await eventually(async () => expect(await deadLettered(queue)).toBe(1));
    expect(attempts).toBe(3);
  });

  it('keeps the outbox relay running through a database outage and publishes what waited; logs it once', async () => {
    const consumer = 'relay-db-cut';
    const { proxy, url } = await proxyTo(run.databaseUrl, 5432);
    const proxiedDb = await database(url);
    const received: string[] = [];
    const subscriber = await broker();
    await subscriber.consume({
      queue: `${run.exchange}.${consumer}`,
      events: ['user.deleted'],
      handle: async (event) => {
        received.push(event.id);
        await applyEffect(db, consumer, event);
      },
    });
    const log = capturingLogger();
    const relay = createOutboxRelay({
      db: proxiedDb,
      schema: 'auth',
      broker: await broker(),
      logger: log.logger,
      pollIntervalMs: 100,
    });
    closers.push(() => relay.stop());

    proxy.cut();
    const events = Array.from({ length: 5 }, () =>
      createEvent('user.deleted', { userId: USER_ID }),
    );
    // Written by the service's other connections; the relay's own database is cut off.
    for (const event of events) await db.$transaction((tx) => enqueueEvent(tx, 'auth', event));
    await eventually(() =>
      expect(log.messages()).toContain(
        'outbox relay could not publish; retrying every poll until it can',
      ),
    );
    await pause(3_000); // thirty polls into the outage
    proxy.restore();

    const ids = events.map((event) => event.id);
    await eventually(async () => expect(await effects(consumer)).toEqual([...ids].sort()), 20_000);
    expect(new Set(received)).toEqual(new Set(ids)); // every one delivered, at least once
    expect(await db.authOutboxEvent.count({ where: { id: { in: ids }, publishedAt: null } })).toBe(
      0,
    );
    expectOncePerOutage(log, 'outbox relay could not publish', 'outbox relay recovered');
  }, 60_000);
});
