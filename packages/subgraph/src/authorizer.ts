import DataLoader from 'dataloader';
import { AppError } from '@platform/errors';
import type { Identity } from '@platform/tokens';

/** Asks the permission service about several permissions of one user at once. */
export type CheckPermissions = (
  userId: string,
  permissions: string[],
  scope: string,
) => Promise<boolean[]>;

/**
 * Permission checks for one request: each (permission, scope) is asked once, and the checks
 * a request makes in the same tick go out as one batch call.
 */
export interface Authorizer {
  can(permission: string, scope?: string): Promise<boolean>;
  /** UNAUTHENTICATED when anonymous, FORBIDDEN without the permission. */
  require(permission: string, scope?: string): Promise<Identity>;
  /** The caller may act on `userId` if it is themself, or holds `permission`. */
  requireSelfOr(userId: string, permission: string): Promise<Identity>;
}

export function createAuthorizer(
  viewer: Identity | null,
  check: CheckPermissions,
  /** Why the caller is anonymous although it presented a token (refused: expired, ...). */
  tokenRefusal?: AppError,
): Authorizer {
  const loaders = new Map<string, DataLoader<string, boolean>>();
  const loaderFor = (scope: string) => {
    let loader = loaders.get(scope);
    if (!loader) {
      loader = new DataLoader<string, boolean>((permissions) => {
        if (!viewer) return Promise.resolve(permissions.map(() => false));
        return check(viewer.userId, [...permissions], scope);
      });
      loaders.set(scope, loader);
    }
    return loader;
  };
  const signedIn = (): Identity => {
    if (!viewer) throw tokenRefusal ?? AppError.unauthenticated();
    return viewer;
  };
  return {
    can: (permission, scope = '') => loaderFor(scope).load(permission),
    async require(permission, scope = '') {
      const identity = signedIn();
      if (!(await loaderFor(scope).load(permission))) throw AppError.forbidden();
      return identity;
    },
    async requireSelfOr(userId, permission) {
      const identity = signedIn();
      if (identity.userId === userId) return identity;
      if (!(await loaderFor('').load(permission))) throw AppError.forbidden();
      return identity;
    },
  };
}
