import { defineConfig } from 'vitest/config';

// Three tiers, each a vitest project:
//   unit         *.spec.ts beside the code; no servers
//   integration  *.int.spec.ts; real PostgreSQL, Redis and RabbitMQ, isolated per run
//   e2e          e2e/**/*.e2e.spec.ts; the apps as processes, driven over HTTP and WebSocket
export default defineConfig({
  // `graphql` as Node itself resolves it (index.js, CommonJS), the copy Apollo Server and
  // @apollo/gateway load: vite's own resolution picks index.mjs, another realm, whose schema
  // types the other copy's checks reject ("Cannot use GraphQLObjectType from another realm").
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            '{packages,internal,services,subgraphs,gateway,prisma,proto,deploy}/**/*.spec.ts',
          ],
          exclude: ['**/node_modules/**', '**/*.int.spec.ts', '**/*.e2e.spec.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['{packages,internal,services,subgraphs,gateway,prisma}/**/*.int.spec.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['e2e/**/*.e2e.spec.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
