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

