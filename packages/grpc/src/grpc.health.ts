import { credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { grpcTarget } from './grpc.client';

type HealthClient = {
  check(
    request: { service: string },
    options: { deadline: Date },
    callback: (error: ServiceError | null, response?: { status: string | number }) => void,
  ): void;
  close(): void;
};

const HealthClientConstructor = makeGenericClientConstructor(
  healthService,
  'grpc.health.v1.Health',
);

/** Asks a gRPC server's standard health service whether it is SERVING. */
export async function checkGrpcHealth(address: string, timeoutMs = 1_000): Promise<boolean> {
  const client = new HealthClientConstructor(
    grpcTarget(address),
    credentials.createInsecure(),
  ) as unknown as HealthClient;
  try {
    return await new Promise<boolean>((resolve) => {
      client.check(
        { service: '' },
        { deadline: new Date(Date.now() + timeoutMs) },
        (error, response) =>
          resolve(!error && (response?.status === 'SERVING' || response?.status === 1)),
      );
    });
  } finally {
    client.close();
  }
}

/** The dependencies domain services report by name (`@platform/service-runtime`). */
export const SERVICE_DEPENDENCIES = ['postgresql', 'redis', 'rabbitmq'] as const;

/** What a gRPC server's health service says: ready or not, and which dependencies are down. */
export interface GrpcHealthReport {
  /** The server takes calls (overall status SERVING) and none of the named dependencies is down. */
  serving: boolean;
  /** Of the names asked about, those the server reports NOT_SERVING (e.g. `postgresql`). */
  down: string[];
}

/**
 * Asks a gRPC server's health service for its overall status (taking calls, not draining)
 * and the named statuses of its dependencies, in parallel, so a caller can say why it is not
 * ready. A server that cannot be reached is not serving, with no dependency named; a name the
 * server does not report counts as up.
 */
export async function grpcHealthReport(
  address: string,
  dependencies: readonly string[] = SERVICE_DEPENDENCIES,
  timeoutMs = 1_000,
): Promise<GrpcHealthReport> {
  const client = new HealthClientConstructor(
    grpcTarget(address),
    credentials.createInsecure(),
  ) as unknown as HealthClient;
  const deadline = new Date(Date.now() + timeoutMs);
  // undefined: no answer (unreachable, or a name the server does not report).
  const statusOf = (service: string) =>
    new Promise<boolean | undefined>((resolve) => {
      client.check({ service }, { deadline }, (error, response) =>
        resolve(error ? undefined : response?.status === 'SERVING' || response?.status === 1),
      );
    });
  try {
    const [overall, ...named] = await Promise.all(['', ...dependencies].map(statusOf));
    if (overall === undefined) return { serving: false, down: [] };
    const down = dependencies.filter((_, n) => named[n] === false);
    return { serving: overall && down.length === 0, down };
  } finally {
    client.close();
  }
}
