import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  commonEnv,
  DEFAULT_METRICS_PORTS,
  DEFAULT_PORTS,
  grpcClientEnv,
  loadEnv,
  localAddress,
  metricsEnv,
  port,
  redisEnv,
  secret,
  tokenEnv,
  url,
} from '@platform/config';
import {
  DEFAULT_OPERATION_LIMITS,
  MAX_PAGE_SIZE,
  type OperationLimits,
} from './limits/operation-cost';

/** A subgraph's URL, or several (its instances) separated by commas: served round-robin. */
const subgraphUrl = z
  .string()
  .refine(
    (value) =>
      value.split(',').every((part) => url(['http', 'https']).safeParse(part.trim()).success),
    { message: 'must be an http(s) URL, or several separated by commas' },
  )
  .optional();

export const env = loadEnv({
  ...commonEnv,
  GATEWAY_HOST: z.string().default('0.0.0.0'),
  GATEWAY_PORT: port(DEFAULT_PORTS.gateway),
  /** The internal Prometheus `/metrics` listener: never the public port; 0 turns it off. */
  METRICS_HOST: z.string().default('127.0.0.1'),
  ...metricsEnv(DEFAULT_METRICS_PORTS.gateway),
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
  /** Concurrent subscriptions one user may hold, on all gateway instances together (Redis). */
  MAX_SUBSCRIPTIONS_PER_USER: z.coerce.number().int().positive().default(20),
  /** Concurrent WebSocket connections per user, all instances together (more close with 4429). */
  MAX_CONNECTIONS_PER_USER: z.coerce.number().int().positive().default(10),
  /** Largest WebSocket message before `connection_init` is accepted; bigger ones close (1009). */
  WS_MAX_UNAUTHENTICATED_MESSAGE_BYTES: z.coerce.number().int().positive().default(4_096),
  /** Largest WebSocket message at all; ws refuses bigger frames before buffering them (1009). */
  WS_MAX_MESSAGE_BYTES: z.coerce.number().int().positive().default(65_536),
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
  /** Operation limits, checked before planning (docs/security.md, "Operation limits"). */
  QUERY_MAX_DEPTH: z.coerce.number().int().positive().default(DEFAULT_OPERATION_LIMITS.maxDepth),
  QUERY_MAX_FIELDS: z.coerce.number().int().positive().default(DEFAULT_OPERATION_LIMITS.maxFields),
  QUERY_MAX_ROOT_FIELDS: z.coerce
    .number()
    .int()
    .positive()
    .default(DEFAULT_OPERATION_LIMITS.maxRootFields),
  QUERY_MAX_NODES: z.coerce.number().int().positive().default(DEFAULT_OPERATION_LIMITS.maxNodes),
  /** Length assumed for a list of objects without `first`/`last`, in the node count. */
  QUERY_LIST_SIZE: z.coerce.number().int().positive().default(DEFAULT_OPERATION_LIMITS.listSize),
  /** Points a caller (user, else address) regains per second; 0 turns the budget off. */
  REQUEST_BUDGET_PER_SECOND: z.coerce.number().int().nonnegative().default(5_000),
  /** Points a caller may spend at once. */
  REQUEST_BUDGET_BURST: z.coerce.number().int().positive().default(50_000),
  /**
   * Proxies in front of the gateway whose X-Forwarded-For entries are trusted (the client
   * address for rate limits and the budget): `false` (none; the default), `true` (one, the
   * ingress controller), or their number. See `clientAddressOf`.
   */
  TRUST_PROXY: z
    .string()
    .trim()
    .regex(/^(true|false|[0-9]{1,2})$/, 'must be true, false or a number of proxies (0-99)')
    .default('false')
    .transform((value) => (value === 'true' ? 1 : value === 'false' ? 0 : Number(value))),
});

/** Every operation's limits, from the QUERY_* variables. */
export const operationLimits: OperationLimits = {
  maxDepth: env.QUERY_MAX_DEPTH,
  maxFields: env.QUERY_MAX_FIELDS,
  maxRootFields: env.QUERY_MAX_ROOT_FIELDS,
  maxNodes: env.QUERY_MAX_NODES,
  listSize: env.QUERY_LIST_SIZE,
  pageSize: MAX_PAGE_SIZE,
};
