import { isIP } from 'node:net';
import { z } from 'zod';

export const port = (fallback: number) =>
  z.coerce.number().int().min(0).max(65535).default(fallback);

export const url = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { message: `must be a URL with scheme ${protocols.join(' or ')}` },
  );

export const secret = (minLength: number) =>
  z.string().min(minLength, { message: `must be at least ${minLength} characters` });

export const booleanFlag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((value) => value === 'true' || value === '1');

export const commonEnv = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long in-flight work may take to finish on shutdown. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
};

export const databaseEnv = {
  DATABASE_URL: url(['postgres', 'postgresql']).default(
    'postgresql://postgres:postgres@127.0.0.1:5432/backend',
  ),
};

export const redisEnv = {
  REDIS_URL: url(['redis', 'rediss']).default('redis://127.0.0.1:6379'),
  /** Prefix of every key this deployment writes; test runs use their own. */
  REDIS_KEY_PREFIX: z.string().default('platform:'),
};

export const rabbitEnv = {
  RABBITMQ_URL: url(['amqp', 'amqps']).default('amqp://guest:guest@127.0.0.1:5672'),
  /** The durable topic exchange all events go through; test runs use their own. */
  EVENTS_EXCHANGE: z.string().min(1).default('platform.events'),
  /** Test runs only: queues are deleted after being unused this long. */
  EVENTS_QUEUE_EXPIRES_MS: z.coerce.number().int().positive().optional(),
};

/**
 * The app's internal Prometheus endpoint: `/metrics` on METRICS_PORT (`0` turns it off), on
 * the host of the app's internal listener (gRPC or subgraph HTTP; the gateway's METRICS_HOST).
 */
export const metricsEnv = (defaultPort: number) => ({
  METRICS_PORT: port(defaultPort),
});

export const grpcServerEnv = (defaultPort: number) => ({
  GRPC_HOST: z.string().default('127.0.0.1'),
  GRPC_PORT: port(defaultPort),
  INTERNAL_TOKEN: secret(32),
});

const HOST_PORT = /^(?:[\w.-]+|\[[\da-fA-F:.]+\]):\d{1,5}$/;
const DNS_TARGET = /^dns:(?:\/\/[\w.-]*(?::\d{1,5})?)?\/[\w.-]+(?::\d{1,5})?$/;

/**
 * Whether `value` names a gRPC service's instances: `host:port`; several `ip:port` of one
 * family separated by commas (optionally `ipv4:`/`ipv6:` first); or a DNS target
 * `dns:///host:port` (e.g. a Kubernetes headless Service).
 */
export function isGrpcAddress(value: string): boolean {
  if (DNS_TARGET.test(value)) return true;
  const list = value.replace(/^ipv[46]:/, '');
  const parts = list.split(',').map((part) => part.trim());
  if (!parts.every((part) => HOST_PORT.test(part))) return false;
  if (parts.length === 1 && list === value) return true;
  // A list (or an explicit ipv4:/ipv6: target) holds IP addresses of one family.
  const families = new Set(
    parts.map((part) => isIP(part.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'))),
  );
  return families.size === 1 && !families.has(0);
}

/**
 * Address of another app's gRPC server, e.g. `USER_SERVICE_ADDR=127.0.0.1:50051`, or of
 * several instances: `127.0.0.1:50051,127.0.0.1:50061`, `dns:///user-service:50051`.
 */
export const grpcClientEnv = (fallback: string) =>
  z
    .string()
    .refine(isGrpcAddress, {
      message: 'must be host:port, a comma-separated list of ip:port, or dns:///host:port',
    })
    .default(fallback);

/** Who issues access tokens and for whom: the same for the signer and every verifier. */
export const tokenEnv = {
  TOKEN_ISSUER: z.string().min(1).default('platform'),
  TOKEN_AUDIENCE: z.string().min(1).default('platform-api'),
};

/**
 * Outgoing mail (@platform/mail). Without SMTP_URL (development only) a mail is logged as
 * sent, to whom and its subject; its body (one-time codes) only with MAIL_LOG_BODIES=true.
 */
export const mailEnv = {
  SMTP_URL: url(['smtp', 'smtps']).optional(),
  MAIL_FROM: z.string().default('Platform <no-reply@localhost>'),
  MAIL_LOG_BODIES: booleanFlag(false),
};

/** Mails carry one-time codes: production sends them and never writes them to a log. */
export const mailRules = [
  (env: { NODE_ENV: string; SMTP_URL?: string | undefined }) =>
    env.NODE_ENV === 'production' && !env.SMTP_URL
      ? 'SMTP_URL: is required in production (mails carry one-time codes; they are never logged there)'
      : undefined,
  (env: { NODE_ENV: string; MAIL_LOG_BODIES: boolean }) =>
    env.NODE_ENV === 'production' && env.MAIL_LOG_BODIES
      ? 'MAIL_LOG_BODIES: must not be true in production (it writes one-time codes to the log)'
      : undefined,
];

/** Comma-separated milliseconds, e.g. `1000,10000,60000`. */
export const delayList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((value) => /^\d+(,\d+)*$/.test(value), {
      message: 'must be comma-separated milliseconds',
    })
    .transform((value) => value.split(',').map(Number));
