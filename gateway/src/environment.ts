import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  commonEnv,
  DEFAULT_PORTS,
  grpcClientEnv,
  loadEnv,
  localAddress,
  port,
  redisEnv,
  secret,
  tokenEnv,
  url,
} from '@platform/config';

const subgraphUrl = url(['http', 'https']).optional();

export const env = loadEnv({
  ...commonEnv,
  GATEWAY_HOST: z.string().default('0.0.0.0'),
  GATEWAY_PORT: port(DEFAULT_PORTS.gateway),
  /** rover's composition config; composed at start. */
  SUPERGRAPH_CONFIG: z
    .string()
    .default(fileURLToPath(new URL('../../supergraph.yaml', import.meta.url))),
  /** A pre-composed supergraph SDL to serve instead of composing SUPERGRAPH_CONFIG. */
  SUPERGRAPH_FILE: z.string().optional(),
  USERS_SUBGRAPH_URL: subgraphUrl,
  RBAC_SUBGRAPH_URL: subgraphUrl,
  NOTIFICATIONS_SUBGRAPH_URL: subgraphUrl,
  /** How long a subgraph may take to answer (headers, then body) before the call fails. */
  SUBGRAPH_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  USER_SERVICE_ADDR: grpcClientEnv(localAddress('user-service')),
  AUTH_SERVICE_ADDR: grpcClientEnv(localAddress('auth-service')),
  PERMISSION_SERVICE_ADDR: grpcClientEnv(localAddress('permission-service')),
  NOTIFICATION_SERVICE_ADDR: grpcClientEnv(localAddress('notification-service')),
  INTERNAL_TOKEN: secret(32),
  ...tokenEnv,
  ...redisEnv,
  /** Comma-separated browser origins; unset = any origin in development, none in production. */
  CORS_ORIGINS: z.string().optional(),
  /** Behind a load balancer: take the client address from the first X-Forwarded-For entry. */
  TRUST_PROXY: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
});
