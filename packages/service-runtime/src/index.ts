export {
  monitorDependencies,
  type DependencyCheck,
  type DependencyMonitor,
} from './dependency-monitor';
export { openServiceInfrastructure, type ServiceInfrastructure } from './service-infrastructure';
export { serveGrpc } from './serve-grpc';
