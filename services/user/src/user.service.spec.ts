import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createUserService, type UserService } from './user.service';
import {
  createFakeUserCache,
  createFakeUserRepository,
  type FakeUserRepository,
} from './testing/user.fakes';

describe('UserService', () => {
  let repository: FakeUserRepository;
  let kicks: number;
  let users: UserService;

  beforeEach(() => {
    repository = createFakeUserRepository();
    kicks = 0;
    users = createUserService({
      users: repository,
      cache: createFakeUserCache(),
      relay: { kick: () => void kicks++ },
    });
  });

  const register = (email = 'ada@example.com', displayName = 'Ada') =>
    users.register({ email, displayName });

  describe('register', () => {
    it('stores the email trimmed and lower-cased and announces the user', async () => {
      const user = await register('  Ada@Example.COM ', ' Ada ');
      expect(user).toMatchObject({
        email: 'ada@example.com',
        displayName: 'Ada',
        status: 'ACTIVE',
      });
      expect(repository.events).toEqual([
        expect.objectContaining({
          type: 'user.registered',
          payload: { userId: user.id, email: 'ada@example.com', displayName: 'Ada' },
        }),
      ]);
      expect(kicks).toBe(1);
    });

    it('refuses a taken email with CONFLICT and announces nothing more', async () => {
      await register();
      await expect(register('ADA@example.com', 'Other')).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      expect(repository.events).toHaveLength(1);
      expect(repository.users.size).toBe(1);
    });

    it('takes a fullwidth spelling of a taken address for that address: CONFLICT, and found by it', async () => {
      const admin = await register('admin@example.com', 'Admin');
      await expect(register('ａｄｍｉｎ@example.com', 'Not Admin')).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      expect(await users.findByEmail('ＡＤＭＩＮ@example.com')).toMatchObject({ id: admin.id });
      expect(repository.users.size).toBe(1);
    });

    it('refuses an address holding invisible, control or bidi characters, storing nothing', async () => {
      for (const email of [
        'admin@example.com\u200b',
        'ad\u0007min@example.com',
        'ad\u202emin@example.com',
        'a\u007f@x.com',
        '<a@x.com>',
      ])
        await expect(register(email, 'Ada'), JSON.stringify(email)).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          message: 'email: must be a valid email address',
        });
      expect(repository.users.size).toBe(0);
      expect(repository.events).toEqual([]);
    });

    it('refuses an address that is not one and an empty name, naming the field', async () => {
      await expect(register('nope', 'Ada')).rejects.toMatchObject({ message: /^email:/ });
      await expect(register('ada@example.com', '  ')).rejects.toMatchObject({
        message: /^displayName:/,
      });
      expect(repository.users.size).toBe(0);
    });
  });

  describe('get', () => {
    it('reads a user from the database once while the cache holds them', async () => {
      const { id } = await register();
      await users.get(id);
      await users.get(id);
      expect(repository.reads).toBe(1);
    });

    it('answers NOT_FOUND for an unknown id and for something that is not an id', async () => {
      for (const id of [randomUUID(), 'me'])
        await expect(users.get(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  describe('getMany', () => {
    it('answers each existing user once, in the order asked, leaving out the rest', async () => {
      const ada = await register('ada@example.com');
      const bob = await register('bob@example.com');
      const found = await users.getMany([bob.id, 'junk', randomUUID(), ada.id, bob.id]);
      expect(found.map((user) => user.id)).toEqual([bob.id, ada.id]);
    });

    it('refuses more than 500 ids', async () => {
      await expect(
        users.getMany(Array.from({ length: 501 }, () => randomUUID())),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: /^ids:/ });
    });
  });

  describe('findByEmail', () => {
    it('finds a user whatever the case and spacing of the address', async () => {
      const { id } = await register();
      expect(await users.findByEmail(' ADA@example.com')).toMatchObject({ id });
      await expect(users.findByEmail('bob@example.com')).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });
  });

  describe('update', () => {
    it('announces a new display name and a new status, each once, and nothing unchanged', async () => {
      const { id } = await register();
      await users.update(id, { displayName: 'Ada L.' });
      await users.update(id, { displayName: 'Ada L.', status: 'DISABLED' });
      await users.update(id, { emailVerified: true });
      expect(repository.events.slice(1).map(({ type, payload }) => ({ type, payload }))).toEqual([
        { type: 'user.updated', payload: { userId: id, displayName: 'Ada L.' } },
        { type: 'user.status_changed', payload: { userId: id, status: 'DISABLED' } },
      ]);
    });

    it('shows the change to the next read, not the cached profile', async () => {
      const { id } = await register();
      await users.get(id);
      await users.update(id, { displayName: 'Ada L.' });
      expect(await users.get(id)).toMatchObject({ displayName: 'Ada L.' });
    });

    it('answers NOT_FOUND for an unknown user and refuses an empty name', async () => {
      await expect(users.update(randomUUID(), { status: 'DISABLED' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(users.update('me', {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
      const { id } = await register();
      await expect(users.update(id, { displayName: ' ' })).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
    });
  });

  describe('delete', () => {
    it('removes the user once, announces it, and forgets the cached profile', async () => {
      const { id } = await register();
      await users.get(id);
      await users.delete(id);
      await expect(users.get(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(users.delete(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(repository.events.map((event) => event.type)).toEqual([
        'user.registered',
        'user.deleted',
      ]);
    });
  });

  describe('list', () => {
    it('refuses a page size outside 1 to 100 and a search longer than an address', async () => {
      for (const first of [0, 101])
        await expect(users.list({ first, search: '' })).rejects.toMatchObject({
          message: /^first:/,
        });
      await expect(users.list({ first: 10, search: 'a'.repeat(255) })).rejects.toMatchObject({
        message: /^search:/,
      });
    });

    it('searches by the trimmed term', async () => {
      await register('ada@example.com', 'Ada');
      await register('bob@example.com', 'Bob');
      const page = await users.list({ first: 10, search: '  bo ' });
      expect(page.rows.map((user) => user.email)).toEqual(['bob@example.com']);
    });
  });
});
