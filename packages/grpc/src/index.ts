export {
  bindService,
  createGrpcServer,
  type GrpcServer,
  type GrpcServerOptions,
  type ServiceBinding,
} from './grpc.server';
export {
  createGrpcClient,
  grpcTarget,
  managedClients,
  type GrpcClient,
  type GrpcClientOptions,
  type ManagedClientFactory,
} from './grpc.client';
export {
  checkGrpcHealth,
  grpcHealthReport,
  SERVICE_DEPENDENCIES,
  type GrpcHealthReport,
} from './grpc.health';
export type { CallContext, UnaryHandlers } from './grpc.types';
export { INTERNAL_TOKEN_HEADER, isInternalCredential } from './internal-credential';
