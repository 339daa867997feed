import { z } from 'zod';
import { commonEnv, grpcClientEnv, port, redisEnv, secret, tokenEnv } from './env.fragments';
import { localAddress } from './ports';

/**
 * What every subgraph reads: where it listens, how it finds and verifies tokens, and where
 * the permission service answers its authorization checks.
 */
export const subgraphEnv = (defaultPort: number) => ({
  ...commonEnv,
  HOST: z.string().default('127.0.0.1'),
  PORT: port(defaultPort),
  INTERNAL_TOKEN: secret(32),
  AUTH_SERVICE_ADDR: grpcClientEnv(localAddress('auth-service')),
  PERMISSION_SERVICE_ADDR: grpcClientEnv(localAddress('permission-service')),
  ...tokenEnv,
  ...redisEnv,
});
