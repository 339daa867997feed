// `npm run compose`: composes supergraph.yaml and writes the supergraph SDL, which the
// gateway can serve as is with SUPERGRAPH_FILE=<file>.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { composeSupergraph, loadSupergraphConfig } from '@platform/supergraph';

const output = resolve(process.argv[2] ?? 'supergraph.graphql');
try {
  writeFileSync(output, composeSupergraph(loadSupergraphConfig(resolve('supergraph.yaml'))));
  process.stdout.write(`wrote ${output}\n`);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
