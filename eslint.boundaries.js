// The architecture's layers as lint rules. Every workspace is an Nx project tagged in its
// package.json (`"nx": { "tags": [...] }`); the allowed edges between tags are below, and
// each workspace gets a `no-restricted-imports` rule refusing the workspaces (and the
// database libraries) its layer may not reach. Nx's own @nx/enforce-module-boundaries is not
// published for the Nx release this repository uses, so the same model is expressed here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = import.meta.dirname;

/**
 * What each kind of project may import (by the imported project's `type:` tag).
 * `scope:data` marks the database package and the packages built on it: only the domain
 * services (and tests) may reach the database.
 */
const ALLOWED = {
  'type:gateway': ['type:package', 'type:contract'],
  'type:subgraph': ['type:package', 'type:contract'],
  'type:service': ['type:package', 'type:contract'],
  'type:package': ['type:package', 'type:contract'],
  'type:contract': ['type:contract'],
  // The launcher and codegen scripts start the apps (through the app registry).
  'type:tooling': ['type:package', 'type:contract', 'type:test'],
  'type:test': [
    'type:gateway',
    'type:subgraph',
    'type:service',
    'type:package',
    'type:contract',
    'type:test',
  ],
};
const NO_DATA = new Set(['type:gateway', 'type:subgraph']);
const DATA_LIBRARIES = ['@prisma/*', 'prisma', 'pg', 'pg-*'];
/** Entry points only tooling and tests use: migrations run before the apps, never inside one. */
const TOOLING_ENTRIES = ['@platform/db/migrate'];
/** Test files may also use the test-only projects (harness, app registry, fixtures). */
const TEST_FILES = ['**/*.spec.ts', '**/testing/**/*.ts'];

function workspaceDirs() {
  const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return workspaces.flatMap((pattern) => {
    if (!pattern.endsWith('/*')) return [pattern];
    const parent = pattern.slice(0, -2);
    return readdirSync(join(root, parent), { withFileTypes: true })
      .filter(
        (entry) =>
          entry.isDirectory() && existsSync(join(root, parent, entry.name, 'package.json')),
      )
      .map((entry) => `${parent}/${entry.name}`);
  });
}

export const projects = workspaceDirs().map((dir) => {
  const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
  const tags = manifest.nx?.tags ?? [];
  const type = tags.find((tag) => tag.startsWith('type:'));
  if (!type || !(type in ALLOWED)) {
    throw new Error(
      `${dir}/package.json: needs an "nx": { "tags": ["type:…"] } of ${Object.keys(ALLOWED).join(', ')}`,
    );
  }
  return { dir, name: manifest.name, type, tags };
});

function refused(project, allowedTypes) {
  const names = projects
    .filter((other) => other !== project)
    .filter(
      (other) =>
        !allowedTypes.includes(other.type) ||
        (NO_DATA.has(project.type) && other.tags.includes('scope:data')),
    )
    .map((other) => ({
      name: other.name,
      message: `${project.dir} (${project.type}) may not import ${other.name} (${other.tags.join(', ')}): see docs/architecture.md.`,
    }));
  if (!allowedTypes.includes('type:test')) {
    for (const name of TOOLING_ENTRIES) {
      names.push({
        name,
        message: `${name} is for the launcher, the migrate CLI and tests: apps never run migrations.`,
      });
    }
  }
  const patterns = NO_DATA.has(project.type)
    ? [
        {
          group: DATA_LIBRARIES,
          message: `${project.dir} (${project.type}) never touches the database: ask a domain service over gRPC.`,
        },
      ]
    : [];
  return ['error', { paths: names, patterns }];
}

/** One block for a project's runtime code, one for its tests (which may use test-only code). */
export const boundaries = projects.flatMap((project) => {
  const files = [`${project.dir}/**/*.ts`];
  const testTypes = [...ALLOWED[project.type], 'type:test'];
  const packageDir = [join(root, project.dir), root];
  const runtimeIsTooling = project.type === 'type:test' || project.type === 'type:tooling';
  return [
    {
      files,
      rules: {
        'no-restricted-imports': refused(project, ALLOWED[project.type]),
        // Imports are declared where they are used: workspace packages in the workspace's
        // package.json, third-party ones there or at the root. Dev-only packages (test
        // harness, tooling) only in tests and tooling.
        'import-x/no-extraneous-dependencies': [
          'error',
          { packageDir, devDependencies: runtimeIsTooling || TEST_FILES },
        ],
      },
    },
    {
      files: TEST_FILES.map((glob) => `${project.dir}/${glob}`),
      rules: { 'no-restricted-imports': refused(project, testTypes) },
    },
  ];
});
