import { loadEnv, serviceEnv } from '@platform/config';

export const env = loadEnv(serviceEnv('user-service'));
