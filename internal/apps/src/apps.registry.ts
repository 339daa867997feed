import { fileURLToPath } from 'node:url';
import { DEFAULT_PORTS, type AppName } from '@platform/config';

export interface AppDefinition {
  name: AppName;
  /** Folder of the app, relative to the repository root. */
  dir: string;
  kind: 'service' | 'subgraph' | 'gateway';
  /** The variable that sets the app's own port. */
  portVariable: string;
  /** The variable other apps read to find this one. */
  addressVariable?: string;
}

/**
 * The variable that sets every app's internal Prometheus `/metrics` port (`0`: none); the
 * defaults are `DEFAULT_METRICS_PORTS` in @platform/config.
 */
export const METRICS_PORT_VARIABLE = 'METRICS_PORT';

/**
 * The OpenTelemetry variables every app reads through @platform/telemetry (started before the
 * app's own environment module, so not in it); docs/operations.md, "Reading a trace".
 */
export const TELEMETRY_VARIABLES = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_EXPORTER',
] as const;

/** ... and the one only the gateway (the edge) reads: whether a client's traceparent is honoured. */
export const EDGE_TELEMETRY_VARIABLES = ['OTEL_TRUST_CLIENT_TRACEPARENT'] as const;

/** The eight apps, in the order they start (dependencies first). */
export const APPS: readonly AppDefinition[] = [
  {
    name: 'user-service',
    dir: 'services/user',
    kind: 'service',
    portVariable: 'GRPC_PORT',
    addressVariable: 'USER_SERVICE_ADDR',
  },
  {
    name: 'auth-service',
    dir: 'services/auth',
    kind: 'service',
    portVariable: 'GRPC_PORT',
    addressVariable: 'AUTH_SERVICE_ADDR',
  },
  {
    name: 'permission-service',
    dir: 'services/permission',
    kind: 'service',
    portVariable: 'GRPC_PORT',
    addressVariable: 'PERMISSION_SERVICE_ADDR',
  },
  {
    name: 'notification-service',
    dir: 'services/notification',
    kind: 'service',
    portVariable: 'GRPC_PORT',
    addressVariable: 'NOTIFICATION_SERVICE_ADDR',
  },
  {
    name: 'users-subgraph',
    dir: 'subgraphs/users',
    kind: 'subgraph',
    portVariable: 'PORT',
    addressVariable: 'USERS_SUBGRAPH_URL',
  },
  {
    name: 'rbac-subgraph',
    dir: 'subgraphs/rbac',
    kind: 'subgraph',
    portVariable: 'PORT',
    addressVariable: 'RBAC_SUBGRAPH_URL',
  },
  {
    name: 'notifications-subgraph',
    dir: 'subgraphs/notifications',
    kind: 'subgraph',
    portVariable: 'PORT',
    addressVariable: 'NOTIFICATIONS_SUBGRAPH_URL',
  },
  { name: 'gateway', dir: 'gateway', kind: 'gateway', portVariable: 'GATEWAY_PORT' },
];

export const APP_NAMES = APPS.map((app) => app.name);

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type AppPorts = Record<AppName, number>;

/**
 * The environment that points every app at the others on 127.0.0.1 with the given ports,
 * plus the app's own port variable. An app with several instances (`instances`: every
 * instance's port, the first being `ports[app]`) is listed whole in its address variable:
 * `127.0.0.1:a,127.0.0.1:b` for a service, `http://127.0.0.1:a/graphql,http://...` for a
 * subgraph.
 */
export function appEnvironment(
  app: AppDefinition,
  ports: AppPorts = DEFAULT_PORTS,
  instances: Partial<Record<AppName, readonly number[]>> = {},
): Record<string, string> {
  const env: Record<string, string> = { [app.portVariable]: String(ports[app.name]) };
  for (const other of APPS) {
    if (!other.addressVariable) continue;
    const otherPorts = instances[other.name] ?? [ports[other.name]];
    env[other.addressVariable] = otherPorts
      .map((port) =>
        other.kind === 'subgraph' ? `http://127.0.0.1:${port}/graphql` : `127.0.0.1:${port}`,
      )
      .join(',');
  }
  return env;
}
