export {
  bindService,
  createGrpcServer,
  type GrpcServer,
  type GrpcServerOptions,
  type ServiceBinding,
} from './grpc.server';
export { createGrpcClient, type GrpcClient, type GrpcClientOptions } from './grpc.client';
export { checkGrpcHealth } from './grpc.health';
export type { CallContext, UnaryHandlers } from './grpc.types';
