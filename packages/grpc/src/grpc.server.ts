import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { AppError, toGrpcError } from '@platform/errors';
import { newCorrelationId, runWithContext, type Logger } from '@platform/logger';
import { isInternalCredential } from './internal-credential';
import { serverCallRecorder } from './grpc.metrics';
import { METADATA, type CallContext, type UnaryHandlers } from './grpc.types';

export interface ServiceBinding<S extends ServiceDefinition = ServiceDefinition> {
  /** The fully qualified service name, e.g. `user.v1.UserService` (reported by health). */
  name: string;
  definition: S;
  handlers: UnaryHandlers<S>;
}

/** A typed service binding: checks the handlers against the service definition. */
export function bindService<S extends ServiceDefinition>(
  binding: ServiceBinding<S>,
): ServiceBinding {
  return binding;
}

export interface GrpcServerOptions {
  logger: Logger;
  /** Shared secret every caller must present; calls without it get UNAUTHENTICATED. */
  internalToken: string;
  services: readonly ServiceBinding[];
}

export interface GrpcServer {
  /** Binds and starts serving; resolves to the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /**
   * Reports a dependency (e.g. `postgresql`) up or down through the health service, under its
   * own name. The overall status ('') says only whether this server takes calls (listening,
   * not draining): an orchestrator's readiness probe on it must not take every instance out
   * of service because a dependency they all share is down (RabbitMQ down stops no request).
   */
  setDependencyStatus(name: string, up: boolean): void;
  /** Lets in-flight calls finish, refusing new ones; forces after `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

function first(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return value === undefined ? undefined : value.toString();
}

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const { logger } = options;
  const server = new Server({
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    // Clients reconnect every few minutes (the calls in flight finish first), so they resolve
    // the service's instances again and spread over ones started since (a scale-out).
    'grpc.max_connection_age_ms': 5 * 60_000,
    'grpc.max_connection_age_grace_ms': 30_000,
  });

  // Standard grpc.health.v1: unauthenticated on purpose, so orchestrators can probe it.
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(server);
  // SERVING overall (and for each service) while listening and not draining; each
  // dependency under its own name (grpcHealthReport asks both).
  let listening = false;
  const publish = () => {
    const status = listening ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', status);
    for (const binding of options.services) health.setStatus(binding.name, status);
  };

  for (const binding of options.services) {
    const implementation: UntypedServiceImplementation = {};
    for (const [method, handler] of Object.entries(binding.handlers)) {
      const path = binding.definition[method]?.path ?? method;
      implementation[method] = wrapUnary(path, handler as UnaryHandler);
    }
    server.addService(binding.definition, implementation);
    health.setStatus(binding.name, 'NOT_SERVING');
  }

  type UnaryHandler = (request: unknown, context: CallContext) => Promise<unknown>;

  // The server-side interceptor chain: credential, context, logging, error translation.
  function wrapUnary(path: string, handler: UnaryHandler) {
    const record = serverCallRecorder(path);
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
      const started = performance.now();
      const correlationId = newCorrelationId(first(call.metadata, METADATA.correlationId));
      const context: CallContext = {
        correlationId,
        userId: first(call.metadata, METADATA.userId),
        sessionId: first(call.metadata, METADATA.sessionId),
      };
      void runWithContext(
        { correlationId, userId: context.userId, sessionId: context.sessionId },
        async () => {
          try {
            const presented = first(call.metadata, METADATA.internalToken);
            if (!isInternalCredential(presented, options.internalToken)) {
              throw new AppError('UNAUTHENTICATED', 'Missing or invalid internal credential');
            }
            const response = await handler(call.request, context);
            logger.debug({ path, ms: Math.round(performance.now() - started) }, 'grpc call');
            record(started, status.OK);
            callback(null, response);
          } catch (error) {
            const wire = toGrpcError(error);
            const ms = Math.round(performance.now() - started);
            if (wire.code === status.INTERNAL) {
              logger.error({ err: error, path, ms }, 'grpc call failed');
            } else {
              logger.info(
                { path, ms, code: wire.metadata.get('x-error-code')[0] },
                'grpc call refused',
              );
            }
            record(started, wire.code);
            callback(wire);
          }
        },
      );
    };
  }

  return {
    async listen(host, port) {
      const bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(
          `${host}:${port}`,
          ServerCredentials.createInsecure(),
          (error, boundPort) => (error ? reject(error) : resolve(boundPort)),
        );
      });
      listening = true;
      publish();
      logger.info({ host, port: bound }, 'gRPC server listening');
      return bound;
    },
    setDependencyStatus(name, up) {
      health.setStatus(name, up ? 'SERVING' : 'NOT_SERVING');
    },
    async close(timeoutMs) {
      listening = false;
      publish();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('gRPC drain timed out; cancelling remaining calls');
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
