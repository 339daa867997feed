import {
  commonEnv,
  databaseEnv,
  DEFAULT_PORTS,
  grpcClientEnv,
  grpcServerEnv,
  loadEnv,
  localAddress,
  rabbitEnv,
  redisEnv,
} from '@platform/config';

export const env = loadEnv({
  ...commonEnv,
  ...databaseEnv,
  ...redisEnv,
  ...rabbitEnv,
  ...grpcServerEnv(DEFAULT_PORTS['permission-service']),
  USER_SERVICE_ADDR: grpcClientEnv(localAddress('user-service')),
});
