export {
  BUILT_IN_ROLES,
  PERMISSIONS,
  PERMISSION_CATALOGUE,
  ROLE_NAME,
  SCOPE,
  grants,
  isGranted,
  isValidPermission,
  permissionProblem,
  uncovered,
  type PermissionName,
} from './permissions';
