import { AppError } from '@platform/errors';
import type { RbacRepositories } from './rbac.store';
import type { UserDirectory } from './user.directory';

/** The built-in role that grants everything (`*`); the last active global holder stays. */
export const ADMIN_ROLE = 'admin';

/**
 * The platform keeps someone who can administer it: at least one user holding `admin`
 * globally who is active and not being disabled or deleted. Every path that can remove such
 * a user (unassigning `admin`, disabling, deleting) decides under the graph lock
 * (`RoleRepository.lockGraph`), so two removals never both count on the other. The users
 * being removed right now are marked leaving in the same database (`LeavingRepository`).
 */
export interface LastAdminRule {
  /**
   * BAD_USER_INPUT when the user holds admin globally and no other active user, not leaving,
   * does. Call under the graph lock, in the change's transaction.
   */
  requireNotLast(repositories: AdminRepositories, userId: string): Promise<void>;
}

/** What the rule reads: the assignments, and who is leaving. */
export type AdminRepositories = Pick<RbacRepositories, 'assignments' | 'leaving'>;

export function createLastAdminRule(deps: {
  users: Pick<UserDirectory, 'anyActive'>;
}): LastAdminRule {
  const { users } = deps;

  async function isLast(
    { assignments, leaving }: AdminRepositories,
    userId: string,
  ): Promise<boolean> {
    if (!(await assignments.holds(userId, ADMIN_ROLE, ''))) return false;
    const others = await assignments.holderIds(ADMIN_ROLE, '', userId);
    const gone = await leaving.among(others);
    return !(await users.anyActive(others.filter((id) => !gone.has(id))));
  }

  return {
    async requireNotLast(repositories, userId) {
      if (await isLast(repositories, userId))
        throw AppError.badInput('userId', 'is the last active global admin');
    },
  };
}
