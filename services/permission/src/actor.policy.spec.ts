import { describe, expect, it } from 'vitest';
import { createActorPolicy, PLATFORM } from './actor.policy';

const ACTOR = { id: '00000000-0000-4000-8000-000000000001' };

describe('ActorPolicy', () => {
  /** A policy over an actor holding `held` in every scope but `tenant:rich`, where they hold `*`. */
  const policyHolding = (held: string[]) =>
    createActorPolicy({
      checks: {
        effectivePermissions: async (userId, scope) => {
          if (userId !== ACTOR.id) throw new Error(`asked about ${userId}`);
          return scope === 'tenant:rich' ? ['*'] : held;
        },
      },
    });

  describe('requireMayGrant', () => {
    it('lets the platform grant anything', async () => {
      await expect(policyHolding([]).requireMayGrant(PLATFORM, ['*'], '')).resolves.toBeUndefined();
    });

    it('lets an actor grant what they hold, wildcards covering what they name', async () => {
      const policy = policyHolding(['users:*', 'audit:read']);
      await expect(
        policy.requireMayGrant(ACTOR, ['users:read', 'users:*', 'audit:read'], ''),
      ).resolves.toBeUndefined();
      await expect(policy.requireMayGrant(ACTOR, [], '')).resolves.toBeUndefined();
    });

    it('refuses what the actor does not hold, naming every missing permission', async () => {
      const policy = policyHolding(['users:read', 'users:write', 'users:delete']);
      await expect(
        policy.requireMayGrant(ACTOR, ['users:read', 'audit:read', 'users:*', '*'], ''),
      ).rejects.toMatchObject({
        code: 'FORBIDDEN',
        message: 'You cannot grant what you do not hold: audit:read, users:*, *',
      });
    });

    it('judges by what the actor holds in the scope of the change', async () => {
      const policy = policyHolding([]);
      await expect(policy.requireMayGrant(ACTOR, ['*'], 'tenant:rich')).resolves.toBeUndefined();
      await expect(policy.requireMayGrant(ACTOR, ['users:read'], 'tenant:poor')).rejects.toThrow(
        /users:read/,
      );
    });
  });
});
