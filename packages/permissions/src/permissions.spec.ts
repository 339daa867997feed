import { describe, expect, it } from 'vitest';
import { grants, isValidPermission } from './permissions';

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
