import {
  DEFAULT_PORTS,
  grpcClientEnv,
  loadEnv,
  localAddress,
  rabbitEnv,
  subgraphEnv,
} from '@platform/config';

export const env = loadEnv({
  ...subgraphEnv(DEFAULT_PORTS['notifications-subgraph']),
  NOTIFICATION_SERVICE_ADDR: grpcClientEnv(localAddress('notification-service')),
  /** `notification.created` arrives here, for the live subscriptions of this instance. */
  ...rabbitEnv,
});
