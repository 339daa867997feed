import { grpcClientEnv, loadEnv, localAddress, serviceEnv } from '@platform/config';

export const env = loadEnv({
  ...serviceEnv('permission-service'),
  USER_SERVICE_ADDR: grpcClientEnv(localAddress('user-service')),
  AUTH_SERVICE_ADDR: grpcClientEnv(localAddress('auth-service')),
});
