import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { composeSupergraph, loadSupergraphConfig, printApiSchema } from './supergraph';

const repoConfig = fileURLToPath(new URL('../../../supergraph.yaml', import.meta.url));
const publishedSchema = fileURLToPath(new URL('../../../docs/schema.graphql', import.meta.url));

describe('composeSupergraph', () => {
  it('composes the three subgraphs of supergraph.yaml', () => {
    const subgraphs = loadSupergraphConfig(repoConfig);
    expect(subgraphs.map((s) => s.name)).toEqual(['users', 'rbac', 'notifications']);
    const sdl = composeSupergraph(subgraphs);
    expect(sdl).toContain('join__Graph');
    expect(sdl).toMatch(/type User\b/);
  });

  it('publishes the current public API in docs/schema.graphql (regenerate with npm run schema)', async () => {
    const api = printApiSchema(composeSupergraph(loadSupergraphConfig(repoConfig)));
    expect(api).not.toMatch(/join__|_entities|_Service/);
    const formatted = await format(api, {
      ...(await resolveConfig(publishedSchema)),
      filepath: publishedSchema,
    });
    expect(readFileSync(publishedSchema, 'utf8')).toBe(formatted);
  });

  it('fails with the composition errors when subgraphs conflict', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    writeFileSync(join(dir, 'a.graphql'), 'type Query { thing: String }');
    writeFileSync(join(dir, 'b.graphql'), 'type Query { thing: Int }');
    writeFileSync(
      join(dir, 'supergraph.yaml'),
      'subgraphs:\n  a:\n    routing_url: http://a/graphql\n    schema: { file: a.graphql }\n  b:\n    routing_url: http://b/graphql\n    schema: { file: b.graphql }\n',
    );
    expect(() => composeSupergraph(loadSupergraphConfig(join(dir, 'supergraph.yaml')))).toThrow(
      /Supergraph does not compose:\n {2}- .*Query\.thing/s,
    );
  });
});
