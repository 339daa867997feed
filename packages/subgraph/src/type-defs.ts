import { readFileSync } from 'node:fs';
import { parse, type DocumentNode } from 'graphql';

/** Reads a subgraph's schema file: the same file `supergraph.yaml` composes. */
export function loadTypeDefs(path: string | URL): DocumentNode {
  return parse(readFileSync(path, 'utf8'));
}
