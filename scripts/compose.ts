// `npm run compose [file]`: composes supergraph.yaml and writes the supergraph SDL, which the
// gateway can serve as is with SUPERGRAPH_FILE=<file>.
// `npm run schema`: writes the public API that composition yields to docs/schema.graphql
// (what clients see; a unit test keeps the committed copy current).
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { composeSupergraph, loadSupergraphConfig, printApiSchema } from '@platform/supergraph';

const api = process.argv.includes('--api');
const output = resolve(
  process.argv.slice(2).find((arg) => !arg.startsWith('--')) ??
    (api ? 'docs/schema.graphql' : 'supergraph.graphql'),
);
try {
  const supergraph = composeSupergraph(loadSupergraphConfig(resolve('supergraph.yaml')));
  writeFileSync(
    output,
    api
      ? await format(printApiSchema(supergraph), {
          ...(await resolveConfig(output)),
          filepath: output,
        })
      : supergraph,
  );
  process.stdout.write(`wrote ${output}\n`);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
