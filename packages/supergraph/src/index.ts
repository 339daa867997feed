export { composeSupergraph, loadSupergraphConfig, type SubgraphConfig } from './supergraph';
