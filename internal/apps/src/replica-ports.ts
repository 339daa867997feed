import { DEFAULT_METRICS_PORTS, type AppName } from '@platform/config';
import { APPS, type AppPorts } from './apps.registry';

/** Instance n of an app listens on its default ports + n × this (4000, 4100; 50051, 50151). */
export const REPLICA_PORT_STEP = 100;
/** Most instances per app on one machine (the ports of instance 9 stay clear of the next app's). */
export const MAX_REPLICAS = 9;

export interface ReplicaPorts {
  /** Every instance's port, by app (instance 0 first). */
  instancePorts: Record<AppName, number[]>;
  /** Every instance's /metrics port (`undefined`: the app's own default). */
  metricsPorts: Record<AppName, (number | undefined)[]>;
}

/**
 * The ports of `replicas` instances of every app on one machine (`npm start -- --replicas`):
 * instance n on the given ports + n × REPLICA_PORT_STEP and its metrics on
 * DEFAULT_METRICS_PORTS + n × REPLICA_PORT_STEP (instance 0 keeps each app's defaults), or,
 * with `free`, ports the OS picks for all but the first gateway's.
 */
export async function replicaPorts(options: {
  replicas: number;
  ports: AppPorts;
  free: boolean;
  freePort: () => Promise<number>;
}): Promise<ReplicaPorts> {
  const { replicas, ports, free, freePort } = options;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS)
    throw new Error(`replicas must be 1 to ${MAX_REPLICAS}, not ${replicas}`);
  const instancePorts = {} as Record<AppName, number[]>;
  const metricsPorts = {} as Record<AppName, (number | undefined)[]>;
  for (const app of APPS) {
    instancePorts[app.name] = [];
    metricsPorts[app.name] = [];
    for (let n = 0; n < replicas; n++) {
      instancePorts[app.name].push(
        n === 0 && app.kind === 'gateway'
          ? ports.gateway
          : free
            ? await freePort()
            : ports[app.name] + n * REPLICA_PORT_STEP,
      );
      metricsPorts[app.name].push(
        free
          ? await freePort()
          : n === 0
            ? undefined
            : DEFAULT_METRICS_PORTS[app.name] + n * REPLICA_PORT_STEP,
      );
    }
  }
  return { instancePorts, metricsPorts };
}
