import {
  commonEnv,
  databaseEnv,
  grpcServerEnv,
  metricsEnv,
  rabbitEnv,
  redisEnv,
} from './env.fragments';
import { DEFAULT_METRICS_PORTS, DEFAULT_PORTS, type AppName } from './ports';

/**
 * What every domain service reads: its gRPC port and credential, its database, Redis and
 * the events exchange. A service adds what only it needs.
 */
export const serviceEnv = (app: AppName) => ({
  ...commonEnv,
  ...databaseEnv,
  ...redisEnv,
  ...rabbitEnv,
  ...grpcServerEnv(DEFAULT_PORTS[app]),
  ...metricsEnv(DEFAULT_METRICS_PORTS[app]),
});
