export * as authV1 from './gen/auth/v1/auth';
export * as notificationV1 from './gen/notification/v1/notification';
export * as permissionV1 from './gen/permission/v1/permission';
export * as userV1 from './gen/user/v1/user';
