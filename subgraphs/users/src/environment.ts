import { z } from 'zod';
import { DEFAULT_PORTS, grpcClientEnv, loadEnv, localAddress, subgraphEnv } from '@platform/config';

export const env = loadEnv({
  ...subgraphEnv(DEFAULT_PORTS['users-subgraph']),
  USER_SERVICE_ADDR: grpcClientEnv(localAddress('user-service')),
  /** Login, register and password-reset attempts in any 60 s per client address; 0 = off. */
  RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().min(0).default(30),
  /** The bootstrap admin, created at start if absent (both or neither). */
  ADMIN_EMAIL: z.string().optional(),
  ADMIN_PASSWORD: z.string().optional(),
});
