import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { composeServices } from '@apollo/composition';
import { printSchema, Supergraph } from '@apollo/federation-internals';
import { parse } from 'graphql';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const configSchema = z.object({
  federation_version: z.string().optional(),
  subgraphs: z.record(
    z.string(),
    z.object({
      routing_url: z.url(),
      schema: z.object({ file: z.string() }),
    }),
  ),
});

export interface SubgraphConfig {
  name: string;
  url: string;
  /** Absolute path of the subgraph's schema file. */
  schemaFile: string;
}

/** Reads rover's `supergraph.yaml`; schema paths are resolved relative to the file. */
export function loadSupergraphConfig(path: string): SubgraphConfig[] {
  const config = configSchema.parse(parseYaml(readFileSync(path, 'utf8')));
  return Object.entries(config.subgraphs).map(([name, subgraph]) => ({
    name,
    url: subgraph.routing_url,
    schemaFile: resolve(dirname(path), subgraph.schema.file),
  }));
}

/** Composes the subgraphs into a supergraph SDL, or throws with every composition error. */
export function composeSupergraph(subgraphs: readonly SubgraphConfig[]): string {
  const result = composeServices(
    subgraphs.map((subgraph) => ({
      name: subgraph.name,
      url: subgraph.url,
      typeDefs: parse(readFileSync(subgraph.schemaFile, 'utf8')),
    })),
  );
  if (result.errors) {
    throw new Error(
      `Supergraph does not compose:\n${result.errors.map((error) => `  - ${error.message}`).join('\n')}`,
    );
  }
  return result.supergraphSdl;
}

/**
 * The API clients see: the supergraph without federation's machinery (join directives,
 * `_entities`, inaccessible elements). `npm run schema` writes it to docs/schema.graphql.
 */
export function printApiSchema(supergraphSdl: string): string {
  return `${printSchema(Supergraph.build(supergraphSdl).apiSchema())}\n`;
}
