import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { createLogger } from '@platform/logger';
import { createMessageBroker, type MessageBroker } from '@platform/messaging';
import { createRedis, type Redis } from '@platform/redis';
import { eventually } from '@platform/testing';
import { PLATFORM } from './actor.policy';
import { startPermissionConsumers } from './permission.consumers';
import { newRole, newUserId } from './testing/permission.factories';
import { useTestServices } from './testing/permission.services';

const logger = createLogger({ name: 'mfa-policy-test', level: 'silent' });

describe('the MFA policy against PostgreSQL, Redis and RabbitMQ', () => {
  const services = useTestServices();
  const db = () => services.database.db;
  let broker: MessageBroker;
  let raw: Redis;
  let versions = 0;

  beforeAll(async () => {
    const { run } = services.database;
    broker = await createMessageBroker({
      url: run.rabbitmqUrl,
      exchange: run.exchange,
      logger,
      reconnectDelayMs: { initial: 50, max: 300 },
      queueExpiresMs: 60_000,
    });
    await startPermissionConsumers({
      broker,
      assignments: services.assignments,
      mfa: services.mfa,
      queuePrefix: run.exchange,
    });
    raw = await createRedis({ url: run.redisUrl, keyPrefix: '', logger });
  });

  afterAll(async () => {
    await broker.close();
    await raw.quit();
  });

  /** Every key of this run's prefix goes, as when Redis restarts without its data. */
  async function loseRedisData(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(
        cursor,
        'MATCH',
        `${services.database.run.redisKeyPrefix}*`,
        'COUNT',
        500,
      );
      if (keys.length > 0) await raw.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }

  /** A user holding a role that requires MFA (no grace), with the projection saying `enrolled`. */
  async function holderOfGuardedRole(enrolled: boolean) {
    const userId = newUserId();
    services.users.set(userId, 'active');
    const role = await newRole(db(), { permissions: ['audit:read'] });
    await services.assignments.assign(PLATFORM, userId, { id: role.id }, '');
    await services.roles.setMfaRequirement(PLATFORM, role.id, {
      required: true,
      gracePeriodSeconds: 0,
    });
    const version = ++versions;
    services.mfaDirectory.states.set(userId, { enrolled, version });
    return { userId, role, version };
  }

  /** Publishes auth.mfa_changed saying this; the auth service's state is left as it is. */
  const publishEvent = async (userId: string, mfaEnrolled: boolean, stateVersion: number) => {
    const event = createEvent('auth.mfa_changed', {
      userId,
      change: mfaEnrolled ? 'totp_enabled' : 'totp_disabled',
      mfaEnrolled,
      stateVersion,
    });
    await broker.publish(event);
    return event.id;
  };

  /** The auth service's state of the user becomes this, and it publishes auth.mfa_changed. */
  const publishChange = (userId: string, mfaEnrolled: boolean, stateVersion: number) => {
    services.mfaDirectory.states.set(userId, { enrolled: mfaEnrolled, version: stateVersion });
    return publishEvent(userId, mfaEnrolled, stateVersion);
  };

  const handled = async (eventId: string) =>
    eventually(async () =>
      expect(
        await db().rbacProcessedEvent.count({
          where: { consumer: 'permission.mfa-changed', eventId },
        }),
      ).toBe(1),
    );

  it('grants the permission once auth.mfa_changed says the user enrolled, and withholds it again when they disable', async () => {
    const { userId, version } = await holderOfGuardedRole(false);
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    // The answer the auth service gave is the projection's first row.
    expect(await db().userMfaState.findUnique({ where: { userId } })).toMatchObject({
      enrolled: false,
      version,
    });

    await publishChange(userId, true, version + 1);
    await eventually(async () =>
      expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(true),
    );
    // The other instance (its own in-process cache) sees it too.
    expect(await services.anotherInstance().checks.isAllowed(userId, '', 'audit:read')).toBe(true);

    await publishChange(userId, false, version + 2);
    await eventually(async () =>
      expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false),
    );
    // A late copy of the enrolment changes nothing.
    await publishEvent(userId, true, version + 1);
    await publishEvent(userId, false, version + 2);
    await eventually(async () =>
      expect(
        await db().rbacProcessedEvent.count({ where: { consumer: 'permission.mfa-changed' } }),
      ).toBeGreaterThanOrEqual(4),
    );
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    expect(await db().userMfaState.findUnique({ where: { userId } })).toMatchObject({
      enrolled: false,
      version: version + 2,
    });
  });

  it('does not grant a withheld permission after Redis lost its data', async () => {
    const { userId } = await holderOfGuardedRole(false);
    const other = services.anotherInstance();
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    expect(await other.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    await loseRedisData();
    // Whatever either instance remembered, the decision comes from PostgreSQL's projection.
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    expect(await other.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    expect(await services.checks.effectivePermissions(userId, '')).toEqual([]);
  });

  it('withholds the permission while the auth service cannot say, without remembering that', async () => {
    const userId = newUserId();
    services.users.set(userId, 'active');
    const role = await newRole(db(), { permissions: ['audit:read'] });
    await services.roles.setMfaRequirement(PLATFORM, role.id, {
      required: true,
      gracePeriodSeconds: 0,
    });
    await services.assignments.assign(PLATFORM, userId, { id: role.id }, '');
    services.mfaDirectory.states.set(userId, { enrolled: true, version: 1 });
    services.mfaDirectory.failing = true;
    try {
      expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
      expect(await db().userMfaState.findUnique({ where: { userId } })).toBeNull();
    } finally {
      services.mfaDirectory.failing = false;
    }
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(true);
  });

  it('ends a grace period without any event: the cached answer lasts only until then', async () => {
    const userId = newUserId();
    services.users.set(userId, 'active');
    const role = await newRole(db(), { permissions: ['audit:read'] });
    await services.assignments.assign(PLATFORM, userId, { id: role.id }, '');
    await services.roles.setMfaRequirement(PLATFORM, role.id, {
      required: true,
      gracePeriodSeconds: 2,
    });
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(true);
    const [assignment] = (await services.assignments.listAssignments([userId])).get(userId) ?? [];
    expect(assignment?.mfa.mfaPending).toBe(true);
    expect(assignment?.mfa.graceEndsAt?.getTime()).toBeGreaterThan(Date.now());
    await eventually(
      async () => expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false),
      10_000,
    );
    const [after] = (await services.assignments.listAssignments([userId])).get(userId) ?? [];
    expect(after?.mfa).toEqual({ mfaPending: true, graceEndsAt: null, withheld: ['audit:read'] });
  });

  it('stores what the auth service says, not what a forged event claims', async () => {
    const { userId, version } = await holderOfGuardedRole(false);
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    // Anyone with the broker's credential: "enrolled", with the highest version there is.
    await handled(await publishEvent(userId, true, 2 ** 31 - 1));
    expect(await db().userMfaState.findUnique({ where: { userId } })).toMatchObject({
      enrolled: false,
      version,
    });
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    // The real enrolment that follows is not shadowed by the forged version.
    await handled(await publishChange(userId, true, version + 1));
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(true);
  });

  it('retries an event while the auth service cannot answer, and never trusts it meanwhile', async () => {
    const { userId, version } = await holderOfGuardedRole(false);
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    services.mfaDirectory.failing = true;
    let eventId: string;
    try {
      const askedBefore = services.mfaDirectory.asked.length;
      eventId = await publishEvent(userId, true, version + 1);
      // The consumer asked the (unreachable) auth service about this user: a delivery failed.
      await eventually(() =>
        expect(
          services.mfaDirectory.asked.slice(askedBefore).some((ids) => ids.includes(userId)),
        ).toBe(true),
      );
      expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(false);
    } finally {
      services.mfaDirectory.failing = false;
    }
    services.mfaDirectory.states.set(userId, { enrolled: true, version: version + 1 });
    await handled(eventId);
    expect(await services.checks.isAllowed(userId, '', 'audit:read')).toBe(true);
  });

  it('lets any answer of the auth service replace a version-0 row, and no older one a newer', async () => {
    const userId = newUserId();
    const states = services.store.mfaStates;
    expect(await states.saveIfNewer(userId, { enrolled: true, version: 0 })).toBe(true);
    expect(await states.saveIfNewer(userId, { enrolled: false, version: 0 })).toBe(true);
    expect(await states.find(userId)).toEqual({ enrolled: false, version: 0 });
    expect(await states.saveIfNewer(userId, { enrolled: true, version: 5 })).toBe(true);
    expect(await states.saveIfNewer(userId, { enrolled: false, version: 3 })).toBe(false);
    expect(await states.saveIfNewer(userId, { enrolled: false, version: 5 })).toBe(false);
    expect(await states.findMany([userId, newUserId()])).toEqual(
      new Map([[userId, { enrolled: true, version: 5 }]]),
    );
  });
});
