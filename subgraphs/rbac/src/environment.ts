import { DEFAULT_PORTS, loadEnv, subgraphEnv } from '@platform/config';

export const env = loadEnv(subgraphEnv(DEFAULT_PORTS['rbac-subgraph']));
