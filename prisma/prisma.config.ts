// Read only by the Prisma CLI (`prisma generate`, and `prisma migrate deploy` where its native
// engine can be downloaded), a dev dependency: never part of an app.
// eslint-disable-next-line import-x/no-extraneous-dependencies
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'schema.prisma',
  migrations: { path: 'migrations' },
  // `migrate` commands need it; `generate` does not, so it may be unset (prisma/config's
  // env() would refuse that).
  // eslint-disable-next-line no-restricted-properties
  datasource: { url: process.env['DATABASE_URL'] },
});
