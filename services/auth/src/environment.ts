import {
  commonEnv,
  databaseEnv,
  DEFAULT_PORTS,
  grpcServerEnv,
  loadEnv,
  rabbitEnv,
  redisEnv,
} from '@platform/config';

export const env = loadEnv({
  ...commonEnv,
  ...databaseEnv,
  ...redisEnv,
  ...rabbitEnv,
  ...grpcServerEnv(DEFAULT_PORTS['auth-service']),
});
