import { z } from 'zod';
import {
  commonEnv,
  grpcClientEnv,
  metricsEnv,
  port,
  redisEnv,
  secret,
  tokenEnv,
} from './env.fragments';
import { DEFAULT_METRICS_PORTS, DEFAULT_PORTS, localAddress } from './ports';

/**
 * What every subgraph reads: where it listens, how it finds and verifies tokens, and where
 * the permission service answers its authorization checks.
 */
export const subgraphEnv = (defaultPort: number) => ({
  ...commonEnv,
  HOST: z.string().default('127.0.0.1'),
  PORT: port(defaultPort),
  ...metricsEnv(metricsPortFor(defaultPort)),
  INTERNAL_TOKEN: secret(32),
  AUTH_SERVICE_ADDR: grpcClientEnv(localAddress('auth-service')),
  PERMISSION_SERVICE_ADDR: grpcClientEnv(localAddress('permission-service')),
  ...tokenEnv,
  ...redisEnv,
});

/** The default metrics port of the subgraph whose default port this is. */
function metricsPortFor(defaultPort: number): number {
  const app = (Object.keys(DEFAULT_PORTS) as (keyof typeof DEFAULT_PORTS)[]).find(
    (name) => DEFAULT_PORTS[name] === defaultPort,
  );
  return app ? DEFAULT_METRICS_PORTS[app] : 0;
}
