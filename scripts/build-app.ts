// Bundles an app (the current directory) into dist/main.js: its own code and the workspace
// packages it imports are bundled; third-party packages stay external and load from
// node_modules, as installed from the lockfile.
//
// Two files: dist/app.js is the app (src/main.ts); dist/main.js, what is started, starts
// OpenTelemetry first (@platform/telemetry/start: nothing at all unless
// OTEL_EXPORTER_OTLP_ENDPOINT is set) and only then imports dist/app.js, so the
// instrumentations are in place before pg, ioredis, @grpc/grpc-js, graphql... load. (In one
// bundle, ESM would load every third-party import before any of our code runs.)
import { readFileSync } from 'node:fs';
import { build, type BuildOptions } from 'esbuild';

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  name: string;
  nx?: { tags?: string[] };
};
// `service.name` of the app's spans: its package name without the scope (`user-service`,
// `users-subgraph`, `gateway`), as in the app registry.
const serviceName = manifest.name.replace(/^@platform\//, '');
const edge = manifest.nx?.tags?.includes('type:gateway') ?? false;

const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  logLevel: 'warning',
  banner: {
    // Some CommonJS dependencies call require(); give the ESM bundle one.
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  plugins: [
    {
      name: 'external-third-party',
      setup(pluginBuild) {
        pluginBuild.onResolve({ filter: /^[^./]/ }, (args) =>
          args.path.startsWith('@platform/') ? undefined : { path: args.path, external: true },
        );
      },
    },
  ],
};

await build({ ...common, entryPoints: ['src/main.ts'], outfile: 'dist/app.js' });
await build({
  ...common,
  stdin: {
    contents: `import { startTelemetry } from '@platform/telemetry/start';
try {
  await startTelemetry({ serviceName: ${JSON.stringify(serviceName)}, edge: ${String(edge)}, env: process.env });
} catch (error) {
  console.error('OpenTelemetry could not start; running without traces', error);
}
await import('./app.js');
`,
    resolveDir: process.cwd(),
    sourcefile: 'telemetry-entry.ts',
    loader: 'ts',
  },
  external: ['./app.js'],
  outfile: 'dist/main.js',
});
