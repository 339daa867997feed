/** Where each app listens unless told otherwise: one table for apps, launcher and docs. */
export const DEFAULT_PORTS = {
  gateway: 4000,
  'users-subgraph': 4001,
  'rbac-subgraph': 4002,
  'notifications-subgraph': 4003,
  'user-service': 50051,
  'auth-service': 50052,
  'permission-service': 50053,
  'notification-service': 50054,
} as const;

export type AppName = keyof typeof DEFAULT_PORTS;

/** `host:port` of a service on this machine, the default address its clients use. */
export const localAddress = (app: AppName) => `127.0.0.1:${DEFAULT_PORTS[app]}`;
