export {
  APPS,
  APP_NAMES,
  appEnvironment,
  type AppDefinition,
  type AppPorts,
} from './apps.registry';
export { startAppProcess, type AppProcess, type AppProcessOptions } from './app.process';
export { waitUntilUp } from './app.health';
export { freePort } from './free-port';
