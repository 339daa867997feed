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
