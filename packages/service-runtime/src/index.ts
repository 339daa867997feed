export { openServiceInfrastructure, type ServiceInfrastructure } from './service-infrastructure';
