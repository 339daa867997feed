import { describe, expect, it } from 'vitest';
import { grants, isValidPermission, permissionProblem, uncovered } from './permissions';

describe('grants', () => {
  it('matches exactly, by resource wildcard and by the global wildcard', () => {
    expect(grants('users:read', 'users:read')).toBe(true);
    expect(grants('users:*', 'users:delete')).toBe(true);
    expect(grants('*', 'roles:manage')).toBe(true);
  });

  it('does not match another action or a resource that merely shares a prefix', () => {
    expect(grants('users:read', 'users:write')).toBe(false);
    expect(grants('users:*', 'usersettings:read')).toBe(false);
    expect(grants('user:*', 'users:read')).toBe(false);
  });
});

describe('isValidPermission', () => {
  it.each(['*', 'users:read', 'users:*', 'audit-log:read_all'])('accepts %s', (p) =>
    expect(isValidPermission(p)).toBe(true),
  );
  it.each(['', 'users', 'users:', ':read', 'Users:read', 'users:read:x', '*:read', 'users read'])(
    'rejects %j',
    (p) => expect(isValidPermission(p)).toBe(false),
  );
});

describe('uncovered', () => {
  it('finds what the holder could not grant', () => {
    expect(uncovered(['users:read'], ['users:read', 'users:write'])).toEqual(['users:write']);
    expect(uncovered(['users:*'], ['users:read', 'users:*'])).toEqual([]);
  });

  it('does not let every action of a resource stand in for its wildcard, nor anything for *', () => {
    const every = ['users:read', 'users:write', 'users:delete'];
    expect(uncovered(every, ['users:*'])).toEqual(['users:*']);
    expect(uncovered(['users:*', 'roles:*', 'audit:*'], ['*'])).toEqual(['*']);
    expect(uncovered(['*'], ['*', 'users:*'])).toEqual([]);
  });
});

describe('permissionProblem', () => {
  it.each(['*', 'users:read', 'roles:*'])('lets a role grant %s', (p) =>
    expect(permissionProblem(p)).toBeNull(),
  );
  it.each([
    ['users:fly', /not a known permission/],
    ['widgets:*', /not a known permission/],
    ['Users:read', /resource:action/],
  ])('refuses %s', (p, message) => expect(permissionProblem(p)).toMatch(message));
  it('quotes at most 60 characters of what it refuses', () => {
    expect(permissionProblem(`users:${'x'.repeat(100_000)}`)).toBe(
      `"users:${'x'.repeat(53)}…" is not a known permission`,
    );
    expect(permissionProblem(`${'😀'.repeat(40)}`)).toBe(
      `"${'😀'.repeat(29)}…" must look like resource:action`,
    );
  });
});
