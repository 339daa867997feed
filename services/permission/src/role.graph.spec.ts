import { describe, expect, it } from 'vitest';
import { NO_MFA_REQUIREMENT } from './mfa.policy';
import { RoleGraph, type RoleNode } from './role.graph';

const role = (id: string, permissions: string[], inherits: string[] = []): RoleNode => ({
  id,
  name: id,
  description: null,
  system: false,
  permissions,
  inherits,
  mfa: NO_MFA_REQUIREMENT,
});

describe('RoleGraph', () => {
  // reader <- editor <- owner; auditor beside them.
  const graph = new RoleGraph([
    role('reader', ['users:read']),
    role('editor', ['users:write'], ['reader']),
    role('owner', ['users:delete'], ['editor']),
    role('auditor', ['audit:read']),
  ]);

  it('grants what a role holds through every ancestor, sorted and without repeats', () => {
    expect(graph.view(graph.get('owner')!).effectivePermissions).toEqual([
      'users:delete',
      'users:read',
      'users:write',
    ]);
    expect(graph.grantedBy(['users:read'], ['editor', 'auditor'])).toEqual([
      'audit:read',
      'users:read',
      'users:write',
    ]);
  });

  it('sees a cycle at any depth, including a role naming itself', () => {
    expect(graph.closesCycle('reader', ['owner'])).toBe(true);
    expect(graph.closesCycle('reader', ['reader'])).toBe(true);
    expect(graph.closesCycle('owner', ['auditor'])).toBe(false);
    expect(graph.closesCycle('auditor', ['owner'])).toBe(false);
  });

  it('stops on a cycle already stored instead of looping', () => {
    const looped = new RoleGraph([
      role('a', ['users:read'], ['b']),
      role('b', ['audit:read'], ['a']),
    ]);
    expect(looped.view(looped.get('a')!).effectivePermissions).toEqual([
      'audit:read',
      'users:read',
    ]);
  });

  it('lists roles by name', () => {
    expect(graph.all().map((r) => r.name)).toEqual(['auditor', 'editor', 'owner', 'reader']);
  });
});
