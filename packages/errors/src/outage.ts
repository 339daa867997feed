/**
 * Whether an error means a dependency is unreachable or refusing work for now (PostgreSQL,
 * Redis, RabbitMQ, a socket): such failures are answered SERVICE_UNAVAILABLE (retryable,
 * HTTP 503), never INTERNAL_SERVER_ERROR. Recognised by the stable marks the drivers put on
 * their errors, anywhere in the `cause` chain.
 */
export function isDependencyOutage(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Object; depth += 1) {
    if (looksLikeOutage(current as Record<string, unknown>)) return true;
    current = next(current);
  }
  return false;
}

/**
 * The error beneath: its `cause`, a GraphQLError's `originalError` (the gateway wraps a failed
 * subgraph fetch so), else the driver-adapter error Prisma keeps in `meta` (a raw query's P2010
 * "Raw query failed" carries the adapter's `DatabaseNotReachable` only there).
 */
function next(error: { cause?: unknown; originalError?: unknown; meta?: unknown }): unknown {
  if (error.cause !== undefined) return error.cause;
  if (error.originalError instanceof Object) return error.originalError;
  const meta = error.meta;
  return meta instanceof Object
    ? (meta as { driverAdapterError?: unknown }).driverAdapterError
    : undefined;
}

// Sockets (Node), PostgreSQL SQLSTATEs of a lost or refused connection, Prisma's codes for an
// unreachable or exhausted database.
const CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  // undici (fetch): the peer closed the socket mid-request, or never accepted it in time
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  'P1001',
  'P1002',
  'P1008',
  'P1017',
  'P2024',
  // a transaction that could not start, or expired, in its time: the database is not answering
  'P2028',
  'P2037',
]);

// Prisma driver-adapter error kinds.
const KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'TransactionStartTimeout',
]);

const NAMES = new Set(['MaxRetriesPerRequestError', 'DependencyUnavailableError']);

const MESSAGES = [
  // ioredis
  /^Connection is closed\.?$/,
  /^Stream isn't writeable/,
  /^Command timed out$/,
  /^Reached the max retries per request limit/,
  // Redis answering but unable to serve: out of memory (noeviction), a replica after a
  // failover, loading its data, no primary, a script running, a transaction aborted by these
  /^(OOM|READONLY|LOADING|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN|EXECABORT) /,
  // pg
  /^Connection terminated/,
  /^timeout exceeded when trying to connect$/,
  /is not queryable$/,
  /^Can't reach database server/,
  /^Query read timeout$/,
  // amqplib
  /^(Channel|Connection) closed/,
  /^Channel ended, no reply will be forthcoming$/,
];

function looksLikeOutage(error: Record<string, unknown>): boolean {
  const { code, kind, name, message } = error;
  if (typeof code === 'string' && CODES.has(code)) return true;
  if (typeof kind === 'string' && KINDS.has(kind)) return true;
  if (typeof name === 'string' && NAMES.has(name)) return true;
  return typeof message === 'string' && MESSAGES.some((pattern) => pattern.test(message));
}

/** An error a client of ours raises when its dependency is down (e.g. broker not connected). */
export class DependencyUnavailableError extends Error {
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
    this.name = 'DependencyUnavailableError';
  }
}
