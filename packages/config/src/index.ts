export { loadEnv, parseEnv, EnvError, type EnvRule } from './env';
export {
  booleanFlag,
  commonEnv,
  databaseEnv,
  grpcClientEnv,
  grpcServerEnv,
  metricsEnv,
  port,
  rabbitEnv,
  redisEnv,
  secret,
  tokenEnv,
  mailEnv,
  mailRules,
  delayList,
  url,
} from './env.fragments';
export { serviceEnv } from './service.env';
export { subgraphEnv } from './subgraph.env';
export { DEFAULT_METRICS_PORTS, DEFAULT_PORTS, localAddress, type AppName } from './ports';
