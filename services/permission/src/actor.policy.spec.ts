import { describe, expect, it } from 'vitest';
import type { AssignmentRow } from './assignment.repository';
import type { AuditRecord } from './audit.repository';
import { createActorPolicy, PLATFORM } from './actor.policy';

const ACTOR = { id: '00000000-0000-4000-8000-000000000001' };
const TARGET = '00000000-0000-4000-8000-000000000002';
const GRANT = { action: 'role.assigned', target: `user:${TARGET}` };
const ACT = { action: 'user.disabled', target: `user:${TARGET}` };

/** Each user's permissions by scope ("" global; a scoped entry adds to the global one). */
type Holdings = Record<string, Record<string, string[]>>;

/** A policy over these holdings, and the audit entries it wrote. */
function policyOver(holdings: Holdings) {
  const audit: AuditRecord[] = [];
  const held = async (userId: string, scope: string) => {
    const own = holdings[userId] ?? {};
    return [...(own[''] ?? []), ...(scope ? (own[scope] ?? []) : [])];
  };
  const policy = createActorPolicy({
    // No MFA requirement here: with or without grace, enrolled or not, the same.
    checks: { effectivePermissions: held, permissionsWithoutGrace: held, fullGrant: held },
    mfa: { enrolment: async () => ({ enrolled: true, known: true }) },
    assignments: {
      listForUsers: async (userIds) =>
        userIds.flatMap((userId) =>
          Object.keys(holdings[userId] ?? {}).map((scope): AssignmentRow => ({
            userId,
            roleId: 'r',
            scope,
            assignedAt: new Date(0),
          })),
        ),
    },
    audit: {
      append: async (record) => {
        audit.push(record);
      },
    },
  });
  return { policy, audit };
}

/** A policy over an actor holding `held` everywhere but `tenant:rich`, where they hold `*`. */
const policyHolding = (held: string[]) =>
  policyOver({ [ACTOR.id]: { '': held, 'tenant:rich': ['*'] } }).policy;

describe('ActorPolicy', () => {
  describe('requireMayGrant', () => {
    it('lets the platform grant anything', async () => {
      await expect(
        policyHolding([]).requireMayGrant(PLATFORM, ['*'], '', GRANT),
      ).resolves.toBeUndefined();
    });

    it('lets an actor grant what they hold, wildcards covering what they name', async () => {
      const policy = policyHolding(['users:*', 'audit:read']);
      await expect(
        policy.requireMayGrant(ACTOR, ['users:read', 'users:*', 'audit:read'], '', GRANT),
      ).resolves.toBeUndefined();
      await expect(policy.requireMayGrant(ACTOR, [], '', GRANT)).resolves.toBeUndefined();
    });

    it('refuses what the actor does not hold, naming every missing permission', async () => {
      const policy = policyHolding(['users:read', 'users:write', 'users:delete']);
      await expect(
        policy.requireMayGrant(ACTOR, ['users:read', 'audit:read', 'users:*', '*'], '', GRANT),
      ).rejects.toMatchObject({
        code: 'FORBIDDEN',
        message: 'You cannot grant what you do not hold: audit:read, users:*, *',
      });
    });

    it('judges by what the actor holds in the scope of the change', async () => {
      const policy = policyHolding([]);
      await expect(
        policy.requireMayGrant(ACTOR, ['*'], 'tenant:rich', GRANT),
      ).resolves.toBeUndefined();
      await expect(
        policy.requireMayGrant(ACTOR, ['users:read'], 'tenant:poor', GRANT),
      ).rejects.toThrow(/users:read/);
    });

    it('records a refused attempt in the audit log, with what was missing', async () => {
      const { policy, audit } = policyOver({ [ACTOR.id]: { '': ['roles:manage'] } });
      await expect(policy.requireMayGrant(ACTOR, ['users:delete'], '', GRANT)).rejects.toThrow();
      expect(audit).toEqual([
        {
          actorId: ACTOR.id,
          action: 'access.refused',
          target: GRANT.target,
          details: { attempted: 'role.assigned', missing: ['users:delete'] },
        },
      ]);
    });
  });

  describe('requireMayActOn', () => {
    it('refuses a users:write holder acting on a global admin, and audits the attempt', async () => {
      const { policy, audit } = policyOver({
        [ACTOR.id]: { '': ['users:write'] },
        [TARGET]: { '': ['*'] },
      });
      await expect(policy.requireMayActOn(ACTOR, TARGET, ACT)).rejects.toMatchObject({
        code: 'FORBIDDEN',
        message: 'You cannot act on a user who holds permissions you do not: *',
      });
      expect(audit).toMatchObject([{ action: 'access.refused', details: { missing: ['*'] } }]);
    });

    it('lets an actor act on a user whose permissions theirs cover, wildcards included', async () => {
      const { policy, audit } = policyOver({
        [ACTOR.id]: { '': ['users:*', 'roles:read'] },
        [TARGET]: { '': ['users:read', 'users:write', 'roles:read'] },
      });
      await expect(policy.requireMayActOn(ACTOR, TARGET, ACT)).resolves.toBeUndefined();
      expect(audit).toEqual([]);
    });

    it('compares in every scope the target holds a role in', async () => {
      const { policy } = policyOver({
        [ACTOR.id]: { '': ['users:write'] },
        [TARGET]: { '': [], 'tenant:acme': ['roles:manage'] },
      });
      await expect(policy.requireMayActOn(ACTOR, TARGET, ACT)).rejects.toThrow(
        /roles:manage in tenant:acme/,
      );
    });

    it('lets anyone act on themselves, and the platform on anyone', async () => {
      const { policy } = policyOver({ [TARGET]: { '': ['*'] } });
      await expect(policy.requireMayActOn({ id: TARGET }, TARGET, ACT)).resolves.toBeUndefined();
      await expect(policy.requireMayActOn(PLATFORM, TARGET, ACT)).resolves.toBeUndefined();
    });
  });
});
