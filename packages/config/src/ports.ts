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

/**
 * Where each app serves its internal Prometheus `/metrics` (`METRICS_PORT`; `0` turns it off):
 * a port of its own, never the public one.
 */
export const DEFAULT_METRICS_PORTS: Record<AppName, number> = {
  gateway: 9400,
  'users-subgraph': 9401,
  'rbac-subgraph': 9402,
  'notifications-subgraph': 9403,
  'user-service': 9411,
  'auth-service': 9412,
  'permission-service': 9413,
  'notification-service': 9414,
};

/** `host:port` of a service on this machine, the default address its clients use. */
export const localAddress = (app: AppName) => `127.0.0.1:${DEFAULT_PORTS[app]}`;
