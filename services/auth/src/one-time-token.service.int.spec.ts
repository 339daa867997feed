import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { RESET_MAIL_CONSUMER } from './one-time-token.service';
import { useAuthTestWorld } from './testing/auth.test-world';
import { wireOverWorld } from './testing/auth.wiring';

describe('password reset requests through the outbox, against PostgreSQL and Redis', () => {
  const world = useAuthTestWorld();

  const outboxSince = async (since: Date) =>
    (
      await world.db.$queryRawUnsafe<{ type: string; payload: unknown }[]>(
        `SELECT type, envelope->'payload' AS payload FROM "auth"."outbox_events"
         WHERE created_at >= $1::timestamptz ORDER BY created_at`,
        since,
      )
    ).map((row) => [row.type, row.payload]);

  it('writes one outbox event per request, with or without an account', async () => {
    const { oneTimeTokens } = wireOverWorld(world);
    const userId = randomUUID();
    const since = new Date(Date.now() - 1000);
    const tokensBefore = await world.db.oneTimeToken.count();
    await oneTimeTokens.requestReset({ userId, email: 'ada@example.com' });
    await oneTimeTokens.requestReset(undefined);
    expect(await outboxSince(since)).toEqual([
      ['auth.password_reset_requested', { userId, email: 'ada@example.com' }],
      ['auth.password_reset_requested', { userId: null, email: null }],
    ]);
    expect(await world.db.oneTimeToken.count()).toBe(tokensBefore);
  });

  it('stores one token and sends one mail for an event delivered twice, even at once', async () => {
    const { oneTimeTokens, mailer } = wireOverWorld(world);
    const userId = randomUUID();
    const event = createEvent('auth.password_reset_requested', {
      userId,
      email: 'ada@example.com',
    });
    await Promise.allSettled([
      oneTimeTokens.sendRequestedReset(event),
      oneTimeTokens.sendRequestedReset(event),
    ]);
    await oneTimeTokens.sendRequestedReset(event);
    expect(await world.db.oneTimeToken.count({ where: { userId } })).toBe(1);
    expect(mailer.sent.map((mail) => mail.to)).toEqual(['ada@example.com']);
    const processed = await world.db.$queryRawUnsafe<{ n: bigint }[]>(
      `SELECT count(*) AS n FROM "auth"."processed_events" WHERE consumer = $1 AND event_id = $2::uuid`,
      RESET_MAIL_CONSUMER,
      event.id,
    );
    expect(Number(processed[0]?.n)).toBe(1);
  });

  it('records an event without an account as handled, and sends nothing', async () => {
    const { oneTimeTokens, mailer } = wireOverWorld(world);
    const event = createEvent('auth.password_reset_requested', { userId: null, email: null });
    const before = await world.db.oneTimeToken.count();
    await oneTimeTokens.sendRequestedReset(event);
    await oneTimeTokens.sendRequestedReset(event);
    expect(await world.db.oneTimeToken.count()).toBe(before);
    expect(mailer.sent).toEqual([]);
  });
});
