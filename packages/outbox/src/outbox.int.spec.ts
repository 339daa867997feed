import { connect as connectAmqp } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type Database } from '@platform/db';
import { createEvent, type EventEnvelope } from '@platform/events';
import { createLogger } from '@platform/logger';
import { createMessageBroker, type MessageBroker } from '@platform/messaging';
import { createTcpProxy, createTestRun, eventually, latch, type TestRun } from '@platform/testing';
import { enqueueEvent, processOnce } from './outbox';
import { createOutboxRelay } from './outbox.relay';

const logger = createLogger({ name: 'outbox-test', level: 'silent' });
const USER_ID = '00000000-0000-4000-8000-000000000001';

describe('transactional outbox and idempotent consumers', () => {
  let run: TestRun;
  let db: Database;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    run = await createTestRun();
    db = await connectDatabase({ databaseUrl: run.databaseUrl });
  });

  afterAll(async () => {
    for (const close of closers.toReversed()) await close();
    await db.$disconnect();
    await run.close();
  });

  async function broker(url = run.rabbitmqUrl): Promise<MessageBroker> {
    const created = await createMessageBroker({
      url,
      exchange: run.exchange,
      logger,
      reconnectDelayMs: { initial: 50, max: 300 },
      queueExpiresMs: 60_000,
    });
    closers.push(() => created.close());
    return created;
  }

  /** The effect of handling an event: one notification row, recorded with the event id. */
  async function applyEffect(consumer: string, event: EventEnvelope): Promise<void> {
    await db.$transaction(async (tx) => {
      if (!(await processOnce(tx, 'notifications', consumer, event.id))) return;
      await tx.notification.create({
        data: { recipientId: USER_ID, type: consumer, title: event.id, body: '' },
      });
    });
  }

  const effects = (consumer: string) => db.notification.count({ where: { type: consumer } });

  it('publishes an event written while RabbitMQ was unreachable once it is back, exactly once', async () => {
    const consumer = 'outage';
    const received: string[] = [];
    const subscriber = await broker();
    await subscriber.consume({
      queue: `${run.exchange}.${consumer}`,
      events: ['user.registered'],
      handle: async (event) => {
        received.push(event.id);
        await applyEffect(consumer, event);
      },
    });

    const proxy = await createTcpProxy({
      host: '127.0.0.1',
      port: Number(new URL(run.rabbitmqUrl).port || 5672),
    });
    closers.push(() => proxy.close());
    const proxied = new URL(run.rabbitmqUrl);
    proxied.port = String(proxy.port);
    const publisher = await broker(proxied.toString());
    let failedAttempts = 0;
    const relay = createOutboxRelay({
      db,
      schema: 'users',
      broker: {
        publish: (event) =>
          publisher.publish(event).catch((error: unknown) => {
            failedAttempts++;
            throw error;
          }),
      },
      logger,
      pollIntervalMs: 100,
    });
    closers.push(() => relay.stop());

    proxy.cut();
    const event = createEvent('user.registered', {
      userId: USER_ID,
      email: 'a@example.com',
      displayName: 'A',
    });
    await db.$transaction((tx) => enqueueEvent(tx, 'users', event));
    relay.kick();
    // The relay tried while RabbitMQ was unreachable: the event stays pending.
    await eventually(() => expect(failedAttempts).toBeGreaterThan(0), 15_000);
    const pending = await db.userOutboxEvent.findUniqueOrThrow({ where: { id: event.id } });
    expect(pending.publishedAt).toBeNull();
    expect(received).toEqual([]);

    proxy.restore();
    await eventually(async () => {
      const row = await db.userOutboxEvent.findUniqueOrThrow({ where: { id: event.id } });
      expect(row.publishedAt).not.toBeNull();
      expect(await effects(consumer)).toBe(1);
    }, 15_000);

    // A second delivery of the same event (as after a relay crash) changes nothing.
    await publisher.publish(event);
    await eventually(() => expect(received).toEqual([event.id, event.id]));
    expect(await effects(consumer)).toBe(1);
  });

  it('publishes the events of one record in the order they were written, whatever times they carry', async () => {
    const consumer = 'order';
    const received: string[] = [];
    const subscriber = await broker();
    await subscriber.consume({
      queue: `${run.exchange}.${consumer}`,
      events: ['user.registered', 'user.updated', 'user.deleted'],
      handle: async (event) => void received.push(event.id),
    });
    const userId = '00000000-0000-4000-8000-000000000002';
    const at = Date.now();
    const written = [
      createEvent('user.registered', { userId, email: 'o@example.com', displayName: 'O' }),
      createEvent('user.updated', { userId, displayName: 'P' }),
      createEvent('user.deleted', { userId }),
    ].map((event, index) => ({
      ...event,
      // The first two within one millisecond; the last from a replica whose clock is behind.
      occurredAt: new Date(index === 2 ? at - 5 : at).toISOString(),
    }));
    // One transaction, so one relay claims all three together.
    await db.$transaction(async (tx) => {
      for (const event of written) await enqueueEvent(tx, 'users', event);
    });
    const relay = createOutboxRelay({ db, schema: 'users', broker: await broker(), logger });
    closers.push(() => relay.stop());
    relay.kick();
    await eventually(() => expect(received).toEqual(written.map((event) => event.id)));
  });

  it('leaves a batch claimed by a relay that died alone until its lease lapses, then publishes it', async () => {
    const consumer = 'lease';
    const received: string[] = [];
    const subscriber = await broker();
    await subscriber.consume({
      queue: `${run.exchange}.${consumer}`,
      events: ['user.deleted'],
      handle: async (event) => void received.push(event.id),
    });
    const event = createEvent('user.deleted', { userId: USER_ID });
    // What a relay that claimed the event and then died leaves behind (written claimed in one
    // statement, so no relay still running from an earlier test can take it first).
    await db.$executeRawUnsafe(
      `INSERT INTO "users"."outbox_events" (id, type, envelope, created_at, claimed_until)
       VALUES ($1::uuid, $2, $3::jsonb, $4::timestamptz, now() + interval '1 hour')`,
      event.id,
      event.type,
      JSON.stringify(event),
      event.occurredAt,
    );
    const relay = createOutboxRelay({
      db,
      schema: 'users',
      broker: await broker(),
      logger,
      pollIntervalMs: 100,
    });
    closers.push(() => relay.stop());

    // A run of the relay while the lease holds publishes nothing and leaves the claim alone.
    expect(await relay.drain()).toBe(0);
    const leased = await db.userOutboxEvent.findUniqueOrThrow({ where: { id: event.id } });
    expect(leased).toMatchObject({ publishedAt: null, claimedUntil: expect.any(Date) as unknown });

    // The lease lapses (its end moves into the past, as if the hour went by).
    await db.$executeRawUnsafe(
      `UPDATE "users"."outbox_events" SET claimed_until = now() - interval '1 millisecond'
        WHERE id = $1::uuid`,
      event.id,
    );
    await eventually(async () => {
      const row = await db.userOutboxEvent.findUniqueOrThrow({ where: { id: event.id } });
      expect(row.publishedAt).not.toBeNull();
      expect(row.claimedUntil).toBeNull();
    });
    await eventually(() => expect(received).toEqual([event.id]));
  });

  it('does not undo the work of a relay that took over a batch whose lease lapsed', async () => {
    const consumer = 'takeover';
    const received: string[] = [];
    const subscriber = await broker();
    await subscriber.consume({
      queue: `${run.exchange}.${consumer}`,
      events: ['user.status_changed'],
      handle: async (event) => void received.push(event.id),
    });
    const event = createEvent('user.status_changed', { userId: USER_ID, status: 'DISABLED' });
    const real = await broker();
    // Relay A's broker stalls past A's lease, and fails when the test says so.
    let failA!: (error: Error) => void;
    const publishingA = latch();
    const stalling = {
      publish: () =>
        new Promise<void>((_, reject) => {
          failA = reject;
          publishingA.open();
        }),
    };
    const relayA = createOutboxRelay({
      db,
      schema: 'auth',
      broker: stalling,
      logger,
      pollIntervalMs: 60_000,
    });
    closers.push(() => relayA.stop());
    await db.$transaction((tx) => enqueueEvent(tx, 'auth', event));
    relayA.kick();
    await publishingA.opened; // A holds the lease now
    // A's lease lapses (its end moves into the past, as if its 30 s went by).
    await db.$executeRawUnsafe(
      `UPDATE "auth"."outbox_events" SET claimed_until = now() - interval '1 millisecond'
        WHERE id = $1::uuid`,
      event.id,
    );
    const relayB = createOutboxRelay({
      db,
      schema: 'auth',
      broker: real,
      logger,
      pollIntervalMs: 100,
    });
    closers.push(() => relayB.stop());

    await eventually(() => expect(received).toEqual([event.id]));
    await eventually(async () => {
      const row = await db.authOutboxEvent.findUniqueOrThrow({ where: { id: event.id } });
      expect(row.publishedAt).not.toBeNull();
    });
    // A's failure report comes after B published: it must leave B's result alone.
    failA(new Error('confirm timed out'));
    await relayA.stop(); // returns once A's batch is settled
    const row = await db.authOutboxEvent.findUniqueOrThrow({ where: { id: event.id } });
    expect(row.publishedAt).not.toBeNull();
    expect(row.claimedUntil).toBeNull();
    expect(received).toEqual([event.id]);
  });

  it('redelivers a message whose consumer died before acking, and its effect happens once', async () => {
    const consumer = 'crash';
    const queue = `${run.exchange}.${consumer}`;
    // The first consumer reaches RabbitMQ through a proxy: cutting it is the process dying
    // (its connection drops before the ack; close() would drain and settle instead).
    const proxy = await createTcpProxy({
      host: '127.0.0.1',
      port: Number(new URL(run.rabbitmqUrl).port || 5672),
    });
    closers.push(() => proxy.close());
    const proxied = new URL(run.rabbitmqUrl);
    proxied.port = String(proxy.port);
    const first = await broker(proxied.toString());
    let crashed = false;
    await first.consume({
      queue,
      events: ['user.deleted'],
      handle: async (event) => {
        await applyEffect(consumer, event);
        crashed = true;
        proxy.cut();
        throw new Error('crashed');
      },
    });
    const event = createEvent('user.deleted', { userId: USER_ID });
    const publisher = await broker();
    await publisher.publish(event);
    await eventually(() => expect(crashed).toBe(true));

    const redelivered: string[] = [];
    const second = await broker();
    await second.consume({
      queue,
      events: ['user.deleted'],
      handle: async (event) => {
        redelivered.push(event.id);
        await applyEffect(consumer, event);
      },
    });
    await eventually(() => expect(redelivered).toEqual([event.id]));
    expect(await effects(consumer)).toBe(1);
  });

  it('parks a message that always fails in the dead-letter queue after the retry limit', async () => {
    const queue = `${run.exchange}.poison`;
    const attempts: number[] = [];
    const subscriber = await broker();
    await subscriber.consume({
      queue,
      events: ['user.updated'],
      retryDelaysMs: [50, 100],
      handle: () => {
        attempts.push(Date.now());
        return Promise.reject(new Error('cannot handle this'));
      },
    });
    const event = createEvent('user.updated', { userId: USER_ID, displayName: 'B' });
    await (await broker()).publish(event);

    const connection = await connectAmqp(run.rabbitmqUrl);
    closers.push(() => connection.close());
    const channel = await connection.createChannel();
    const parked = await eventually(async () => {
      const message = await channel.get(`${queue}.dlq`, { noAck: true });
      if (!message) throw new Error('nothing in the dead-letter queue yet');
      return message;
    });
    expect(attempts).toHaveLength(3);
    expect((JSON.parse(parked.content.toString()) as EventEnvelope).id).toBe(event.id);
    expect(parked.properties.headers?.['x-attempt']).toBe(3);
    expect(parked.properties.headers?.['x-error']).toBe('cannot handle this');
  });

  it('parks a malformed message at once, without retries', async () => {
    const queue = `${run.exchange}.malformed`;
    let handled = 0;
    const subscriber = await broker();
    await subscriber.consume({
      queue,
      events: ['user.updated'],
      handle: async () => void handled++,
    });
    const connection = await connectAmqp(run.rabbitmqUrl);
    closers.push(() => connection.close());
    const channel = await connection.createChannel();
    channel.publish(run.exchange, 'user.updated', Buffer.from('{"not":"an event"'));
    const parked = await eventually(async () => {
      const message = await channel.get(`${queue}.dlq`, { noAck: true });
      if (!message) throw new Error('nothing in the dead-letter queue yet');
      return message;
    });
    expect(parked.content.toString()).toBe('{"not":"an event"');
    expect(handled).toBe(0);
  });
});
