import { readFileSync } from 'node:fs';
import { composeSupergraph, loadSupergraphConfig } from '@platform/supergraph';

/**
 * The supergraph SDL the gateway serves: a pre-composed file when one is given, otherwise
 * composed now from rover's config (a composition error stops the gateway).
 */
export function loadSupergraphSdl(options: {
  configPath: string;
  supergraphFile?: string | undefined;
}): string {
  if (options.supergraphFile) return readFileSync(options.supergraphFile, 'utf8');
  return composeSupergraph(loadSupergraphConfig(options.configPath));
}
