export {
  createSubgraph,
  type Subgraph,
  type SubgraphContext,
  type SubgraphOptions,
  type PermissionChecks,
} from './subgraph.server';
export { loadTypeDefs } from './type-defs';
export { requireViewer, viewerIfAny } from './viewer';
export { DateTimeScalar, JSONScalar } from './scalars';
export { createAuthorizer, type Authorizer, type CheckPermissions } from './authorizer';
export type {
  UpstreamConnectionParams,
  UpstreamEventExtensions,
  UpstreamSubscribeExtensions,
} from './subscriptions';
export { openSubgraphRuntime, type SubgraphRuntime, type SubgraphRuntimeEnv } from './runtime';
