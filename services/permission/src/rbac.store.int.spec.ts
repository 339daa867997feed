import { describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { createRbacStore } from './rbac.store';
import { twiceAtOnce, useTestDatabase } from './testing/permission.database';
import { newRole, newRoleName, newUserId } from './testing/permission.factories';

describe('RbacStore', () => {
  const database = useTestDatabase();

  /** A store whose relay records each wake, with the events committed by then. */
  function storeWatchingTheRelay() {
    const wakes: Promise<string[]>[] = [];
    const store = createRbacStore({
      db: database.db,
      relay: {
        kick: () => {
          wakes.push(
            database.db.rbacOutboxEvent
              .findMany({ select: { id: true } })
              .then((rows) => rows.map((row) => row.id)),
          );
        },
      },
    });
    return { store, wakes };
  }

  const roleChanged = (roleId: string) =>
    createEvent('rbac.role_changed', { roleId, roleName: 'r', change: 'created' });

  describe('transaction', () => {
    it('commits the repositories’ writes and the events together', async () => {
      const { store } = storeWatchingTheRelay();
      const name = newRoleName();
      const event = await store.transaction(async (tx) => {
        const role = await tx.roles.create({
          name,
          description: null,
          permissions: [],
          inherits: [],
        });
        await tx.assignments.insert({ userId: newUserId(), roleId: role.id, scope: '' });
        await tx.audit.append({
          actorId: null,
          action: 'role.created',
          target: `role:${role.id}`,
          details: {},
        });
        const created = roleChanged(role.id);
        await tx.outbox.enqueue(created);
        return created;
      });
      const role = await store.roles.findByName(name);
      expect(await store.assignments.countForRole(role!.id)).toBe(1);
      const row = await database.db.rbacOutboxEvent.findUnique({ where: { id: event.id } });
      expect(row).toMatchObject({ type: 'rbac.role_changed', publishedAt: null });
    });

    it('writes nothing, events included, when the work fails', async () => {
      const { store, wakes } = storeWatchingTheRelay();
      const name = newRoleName();
      const event = roleChanged(newUserId());
      const failed = store.transaction(async (tx) => {
        const role = await tx.roles.create({
          name,
          description: null,
          permissions: [],
          inherits: [],
        });
        await tx.outbox.enqueue(event);
        await tx.roles.create({ name, description: null, permissions: [], inherits: [role.id] });
      });
      await expect(failed).rejects.toThrow();
      expect(await store.roles.findByName(name)).toBeNull();
      expect(await database.db.rbacOutboxEvent.findUnique({ where: { id: event.id } })).toBeNull();
      expect(wakes).toEqual([]);
    });

    it('wakes the relay once the event is committed, and not after a change without events', async () => {
      const { store, wakes } = storeWatchingTheRelay();
      await store.transaction(async (tx) => {
        await tx.roles.create({
          name: newRoleName(),
          description: null,
          permissions: [],
          inherits: [],
        });
      });
      const event = roleChanged((await newRole(database.db)).id);
      expect(wakes).toHaveLength(0);
      await store.transaction((tx) => tx.outbox.enqueue(event));
      expect(wakes).toHaveLength(1);
      expect(await wakes[0]).toContain(event.id);
    });
  });

  describe('outbox.processOnce', () => {
    it('records a consumed event once: a redelivery, even a concurrent one, answers false', async () => {
      const { store } = storeWatchingTheRelay();
      for (let round = 0; round < 10; round++) {
        const eventId = newUserId();
        const consume = () => store.transaction((tx) => tx.outbox.processOnce('test', eventId));
        expect(await twiceAtOnce(consume)).toEqual([false, true]);
        expect(await consume()).toBe(false);
        expect(await store.transaction((tx) => tx.outbox.processOnce('another', eventId))).toBe(
          true,
        );
      }
    });
  });
});
