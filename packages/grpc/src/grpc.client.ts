import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  type Client,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { isIPv4, isIPv6 } from 'node:net';
import { fromGrpcError } from '@platform/errors';
import { currentContext } from '@platform/logger';
import { clientCallRecorder } from './grpc.metrics';
import { METADATA, type CallOptions, type PromiseClient } from './grpc.types';

export interface GrpcClientOptions {
  /**
   * Where the service's instances are (see `grpcTarget`): `host:port`, several
   * `ip:port` separated by commas, or `dns:///host:port` (e.g. a Kubernetes headless
   * Service). Calls spread over every instance (`round_robin`).
   */
  address: string;
  internalToken: string;
  /** Every call gets a deadline; this one unless the call sets its own. */
  defaultDeadlineMs?: number;
}

export type GrpcClient<S extends ServiceDefinition> = PromiseClient<S> & { close(): void };

type RawUnary = (
  request: unknown,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (error: ServiceError | null, response: unknown) => void,
) => void;

const SCHEME = /^(dns|ipv4|ipv6|unix|unix-abstract):/;

/**
 * The grpc-js target for a service address:
 * - a target with a scheme as it is: `dns:///auth.platform.svc:50051` (a Kubernetes headless
 *   Service: every address the name has, re-resolved when an instance goes away);
 * - `host:port`: one address, or a name resolved through DNS (all its addresses);
 * - several `host:port` separated by commas, all IP addresses of one family: an
 *   `ipv4:`/`ipv6:` target listing them (names in a list cannot be resolved one by one:
 *   give a `dns:` target instead).
 */
export function grpcTarget(address: string): string {
  const trimmed = address.trim();
  if (SCHEME.test(trimmed)) return trimmed;
  const parts = trimmed
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length <= 1) return parts[0] ?? trimmed;
  const hosts = parts.map((part) => part.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'));
  if (hosts.every((host) => isIPv4(host))) return `ipv4:${parts.join(',')}`;
  if (hosts.every((host) => isIPv6(host))) return `ipv6:${parts.join(',')}`;
  throw new Error(
    `gRPC address ${JSON.stringify(address)}: a list must be IP addresses of one family ` +
      '(ip:port,ip:port); for names use a dns:///host:port target',
  );
}

/** Channel options of every client (and health check) of a service. */
export const GRPC_CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30_000,
  // A restarted service is reached again within two seconds, not grpc-js's default two minutes.
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  // Calls spread over every instance the target names, skipping the ones that are down (a
  // call in flight on an instance that dies fails UNAVAILABLE; the next goes elsewhere).
  'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  // A `dns:` target is looked up again this soon after an instance goes away (default 30 s).
  'grpc.dns_min_time_between_resolutions_ms': 2_000,
} as const;

/**
 * A promise client for a ts-proto generated service definition. Every call carries the
 * internal credential, the current correlation id and the end user's identity, and has a
 * deadline; failures come back as AppErrors (see @platform/errors).
 */
export function createGrpcClient<S extends ServiceDefinition>(
  definition: S,
  options: GrpcClientOptions,
): GrpcClient<S> {
  const Constructor = makeGenericClientConstructor(definition, 'client');
  const client: Client = new Constructor(
    grpcTarget(options.address),
    credentials.createInsecure(),
    GRPC_CHANNEL_OPTIONS,
  );
  const defaultDeadlineMs = options.defaultDeadlineMs ?? 5_000;

  function metadataForCall(): Metadata {
    // Calls fail at once while a service is unreachable (no waitForReady: it measurably slowed
    // every call under load); the short reconnect backoff above bounds that to ~2 s.
    const metadata = new Metadata();
    metadata.set(METADATA.internalToken, options.internalToken);
    const context = currentContext();
    if (context) {
      metadata.set(METADATA.correlationId, context.correlationId);
      if (context.userId) metadata.set(METADATA.userId, context.userId);
      if (context.sessionId) metadata.set(METADATA.sessionId, context.sessionId);
    }
    return metadata;
  }

  const methods: Record<string, (request: unknown, callOptions?: CallOptions) => Promise<unknown>> =
    {};
  for (const method of Object.keys(definition)) {
    const raw = (client as unknown as Record<string, RawUnary>)[method];
    if (typeof raw !== 'function') continue;
    const record = clientCallRecorder(definition[method]?.path ?? `/unknown/${method}`);
    methods[method] = (request, callOptions) =>
      new Promise((resolve, reject) => {
        const deadline = new Date(Date.now() + (callOptions?.deadlineMs ?? defaultDeadlineMs));
        const started = performance.now();
        raw.call(client, request, metadataForCall(), { deadline }, (error, response) => {
          record(started, error ? error.code : 0);
          if (error) reject(fromGrpcError(error));
          else resolve(response);
        });
      });
  }
  return Object.assign(methods as PromiseClient<S>, { close: () => client.close() });
}

/** Creates a client of another service, closed when the app shuts down. */
export type ManagedClientFactory = <S extends ServiceDefinition>(
  name: string,
  definition: S,
  address: string,
) => GrpcClient<S>;

/**
 * The clients an app opens to other services: each carries the internal credential and has
 * its teardown registered (`onShutdown` is the app's lifecycle).
 */
export function managedClients(options: {
  internalToken: string;
  onShutdown: (name: string, teardown: () => void) => void;
}): ManagedClientFactory {
  return (name, definition, address) => {
    const client = createGrpcClient(definition, { address, internalToken: options.internalToken });
    options.onShutdown(`${name} client`, () => client.close());
    return client;
  };
}
