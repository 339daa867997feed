export {
  APPS,
  APP_NAMES,
  appEnvironment,
  EDGE_TELEMETRY_VARIABLES,
  METRICS_PORT_VARIABLE,
  TELEMETRY_VARIABLES,
  type AppDefinition,
  type AppPorts,
} from './apps.registry';
export { startAppProcess, type AppProcess, type AppProcessOptions } from './app.process';
export { waitUntilUp } from './app.health';
export { freePort } from './free-port';
export { MAX_REPLICAS, REPLICA_PORT_STEP, replicaPorts, type ReplicaPorts } from './replica-ports';
