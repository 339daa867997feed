import { DEFAULT_PORTS, grpcClientEnv, loadEnv, localAddress, subgraphEnv } from '@platform/config';

export const env = loadEnv({
  ...subgraphEnv(DEFAULT_PORTS['users-subgraph']),
  USER_SERVICE_ADDR: grpcClientEnv(localAddress('user-service')),
  PERMISSION_SERVICE_ADDR: grpcClientEnv(localAddress('permission-service')),
});
