import {
  delayList,
  grpcClientEnv,
  loadEnv,
  localAddress,
  mailEnv,
  mailRules,
  serviceEnv,
} from '@platform/config';

export const env = loadEnv(
  {
    ...serviceEnv('notification-service'),
    /** Recipients' email addresses, and whether a recipient exists. */
    USER_SERVICE_ADDR: grpcClientEnv(localAddress('user-service')),
    ...mailEnv,
    /** Back-off between attempts at an email; after the last, it is FAILED and dead-lettered. */
    NOTIFICATION_EMAIL_RETRY_DELAYS_MS: delayList('5000,60000,600000'),
  },
  mailRules,
);
