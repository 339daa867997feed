export {
  printApiSchema,
  composeSupergraph,
  loadSupergraphConfig,
  type SubgraphConfig,
} from './supergraph';
