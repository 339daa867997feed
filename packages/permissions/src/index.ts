export {
  BUILT_IN_ROLES,
  PERMISSIONS,
  PERMISSION_CATALOGUE,
  grants,
  isValidPermission,
  type PermissionName,
} from './permissions';
