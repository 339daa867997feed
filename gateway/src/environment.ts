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
  /** Concurrent subscriptions one user may hold on one gateway instance. */
  MAX_SUBSCRIPTIONS_PER_USER: z.coerce.number().int().positive().default(20),
  /** A subscriber whose unsent data exceeds this many bytes is disconnected (close 1013). */
  SUBSCRIPTION_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** How often open WebSocket connections are checked for an ended session. */
  SUBSCRIPTION_SESSION_CHECK_MS: z.coerce.number().int().positive().default(2_000),
  /** WebSocket ping interval; a client that misses a pong is dropped. */
  WS_PING_MS: z.coerce.number().int().positive().default(15_000),
  /** Behind a load balancer: take the client address from the first X-Forwarded-For entry. */
  TRUST_PROXY: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
});
