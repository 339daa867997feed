export { openServiceInfrastructure, type ServiceInfrastructure } from './service-infrastructure';
export { serveGrpc } from './serve-grpc';
