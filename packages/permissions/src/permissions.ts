import { shortened } from '@platform/collections';

/** The catalogue of known permissions: declared once, seeded, and listed by `permissions`. */
export const PERMISSION_CATALOGUE = {
  'users:read': 'Read any user profile and list users',
  'users:write': 'Change any user, including their status',
  'users:delete': 'Delete any user',
  'roles:read': "Read roles, permissions and any user's roles",
  'roles:manage': 'Create, change and delete roles',
  'roles:assign': 'Assign and unassign roles',
  'audit:read': 'Read the RBAC audit log',
  'notifications:send': 'Send a notification to any user',
} as const;

export type PermissionName = keyof typeof PERMISSION_CATALOGUE;

export const PERMISSIONS = Object.fromEntries(
  Object.keys(PERMISSION_CATALOGUE).map((name) => [name, name]),
) as { readonly [K in PermissionName]: K };

/** Built-in, `system` roles: seeded at start, never deleted or renamed. */
export const BUILT_IN_ROLES = {
  admin: { description: 'Everything', permissions: ['*'] },
  // What every signed-in user may do beyond their own profile, sessions and notifications.
  user: { description: 'Every registered user', permissions: [] as string[] },
} as const;

const PART = /^[a-z][a-z0-9_-]*$/;

/** `*`, `resource:*` or `resource:action`. */
export function isValidPermission(permission: string): boolean {
  if (permission === '*') return true;
  const [resource, action, ...rest] = permission.split(':');
  return (
    rest.length === 0 &&
    !!resource &&
    PART.test(resource) &&
    !!action &&
    (action === '*' || PART.test(action))
  );
}

/** Whether a granted permission (possibly a wildcard) covers a required one. */
export function grants(granted: string, required: string): boolean {
  if (granted === '*' || granted === required) return true;
  if (granted.endsWith(':*')) return required.startsWith(granted.slice(0, -1));
  return false;
}

/** Whether the granted set covers a required permission. */
export function isGranted(granted: readonly string[], required: string): boolean {
  return granted.some((permission) => grants(permission, required));
}

/**
 * The permissions of `wanted` that `held` does not cover: the escalation a caller holding
 * `held` would commit by granting `wanted`. A wildcard is covered only by an equal or wider
 * wildcard (holding every `users:` action today does not cover `users:*`), so only a holder
 * of `*` can grant `*`.
 */
export function uncovered(held: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((permission) => !isGranted(held, permission));
}

/** An input as a message repeats it: at most 60 characters of it (no input is echoed in full). */
const quoted = (input: string) => `"${shortened(input, 60)}"`;

const RESOURCES = new Set(Object.keys(PERMISSION_CATALOGUE).map((name) => name.split(':')[0]));

/**
 * Why a permission cannot be granted by a role, or null when it can: it must be in the
 * catalogue, `resource:*` for a catalogued resource, or `*`.
 */
export function permissionProblem(permission: string): string | null {
  if (!isValidPermission(permission)) return `${quoted(permission)} must look like resource:action`;
  if (permission === '*' || permission in PERMISSION_CATALOGUE) return null;
  const [resource, action] = permission.split(':');
  if (action === '*' && RESOURCES.has(resource)) return null;
  return `${quoted(permission)} is not a known permission`;
}

/** Role names: lowercase, 2-50 characters, starting with a letter. */
export const ROLE_NAME = /^[a-z][a-z0-9_-]{1,49}$/;

/** Scopes such as `tenant:acme`: 1-200 characters of letters, digits and `_.:-`. */
export const SCOPE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;
