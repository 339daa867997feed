export {
  APPS,
  APP_NAMES,
  appEnvironment,
  METRICS_PORT_VARIABLE,
  type AppDefinition,
  type AppPorts,
} from './apps.registry';
export { startAppProcess, type AppProcess, type AppProcessOptions } from './app.process';
export { waitUntilUp } from './app.health';
export { freePort } from './free-port';
