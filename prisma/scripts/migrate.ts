/**
 * Prisma migrations without the native schema-engine binary.
 *
 *   npx tsx prisma/scripts/migrate.ts deploy          apply pending migrations
 *   npx tsx prisma/scripts/migrate.ts create <name>   write a new migration from the schema
 *   npx tsx prisma/scripts/migrate.ts diff            print the SQL the database lacks (exit 2)
 *
 * Environment:
 *   DATABASE_URL            default postgresql://postgres:postgres@127.0.0.1:5432/backend
 *   PRISMA_SCHEMA_PATH      default prisma/schema.prisma (next to this script's package)
 *   PRISMA_MIGRATIONS_DIR   default prisma/migrations
 *   DEBUG=schema-engine     print the engine's log lines
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Relative, not `@platform/db/migrate`: the Dockerfile bundles this script with packages kept
// external (prisma/dist/migrate.js), and the image has no workspace links.
import {
  applyMigrations,
  createDatabaseIfMissing,
  createMigration,
  diffDatabase,
  setSchemaEngineLogger,
} from '../src/migrate/index';

const DEFAULT_DATABASE_URL = 'postgresql://postgres:postgres@127.0.0.1:5432/backend';
const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Usage:
  tsx prisma/scripts/migrate.ts deploy          Apply pending migrations to DATABASE_URL
  tsx prisma/scripts/migrate.ts create <name>   Create a migration from the Prisma schema
  tsx prisma/scripts/migrate.ts diff            Print the SQL that would bring DATABASE_URL to
                                                the schema; exit code 2 when there is any

Exit codes: 0 done, 1 failed (or wrong usage), 2 the database differs from the schema (diff).`;

/** Runs one command; resolves to the process's exit code. */
async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const databaseUrl = process.env['DATABASE_URL'] || DEFAULT_DATABASE_URL;
  const schemaPath = process.env['PRISMA_SCHEMA_PATH'] || path.join(packageDir, 'schema.prisma');
  const migrationsDir = process.env['PRISMA_MIGRATIONS_DIR'] || path.join(packageDir, 'migrations');
  if (/(^|,)\s*(\*|schema-engine)\s*(,|$)/.test(process.env['DEBUG'] ?? '')) {
    setSchemaEngineLogger((line) => process.stderr.write(`[schema-engine] ${line}\n`));
  }

  switch (command) {
    case 'deploy': {
      if (rest.length > 0) throw new UsageError(`"deploy" takes no arguments.`);
      if (await createDatabaseIfMissing(databaseUrl)) console.log('Created database.');
      const applied = await applyMigrations({ databaseUrl, migrationsDir, schemaPath });
      if (applied.length === 0) {
        console.log('No pending migrations to apply.');
      } else {
        console.log(`Applied ${applied.length} migration(s):`);
        for (const name of applied) console.log(`  ${name}`);
      }
      return 0;
    }
    case 'create': {
      const [name, ...extra] = rest;
      if (name === undefined || extra.length > 0)
        throw new UsageError(`"create" takes exactly one <name>.`);
      // The engine needs a connection to the server (it replays the existing
      // migrations into a temporary shadow database there).
      await createDatabaseIfMissing(databaseUrl);
      const created = await createMigration({ databaseUrl, migrationsDir, schemaPath, name });
      console.log(
        created === null
          ? 'The migrations are already in sync with the schema: no migration created.'
          : `Created ${path.join(path.relative(process.cwd(), migrationsDir), created, 'migration.sql')}`,
      );
      return 0;
    }
    case 'diff': {
      if (rest.length > 0) throw new UsageError(`"diff" takes no arguments.`);
      const script = await diffDatabase({ databaseUrl, migrationsDir, schemaPath });
      if (script === null) {
        console.log('The database matches the schema.');
        return 0;
      }
      process.stdout.write(script);
      return 2; // as `prisma migrate diff --exit-code`
    }
    default:
      throw new UsageError(
        command === undefined ? 'Missing command.' : `Unknown command "${command}".`,
      );
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n\n${USAGE}`);
      process.exitCode = 1;
      return;
    }
    console.error(`migrate failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
