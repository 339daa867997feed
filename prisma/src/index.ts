import { PrismaPg } from '@prisma/adapter-pg';
import { fileURLToPath } from 'node:url';
import { PrismaClient } from './generated/client';

export * from './generated/client';

export interface DatabaseOptions {
  databaseUrl: string;
  /** Connections in this process's pool. */
  poolSize?: number;
}

/**
 * Prisma Client over the `pg` driver adapter (no native engine needed), connected: fails
 * with a clear message when PostgreSQL cannot be reached.
 */
export async function connectDatabase(options: DatabaseOptions): Promise<PrismaClient> {
  const client = createPrismaClient(options);
  try {
    await client.$queryRawUnsafe('SELECT 1');
  } catch (error) {
    await client.$disconnect().catch(() => undefined);
    throw new Error(`PostgreSQL is unreachable at ${new URL(options.databaseUrl).host}`, {
      cause: error,
    });
  }
  return client;
}

/** Prisma Client over the `pg` driver adapter (no native engine needed). */
export function createPrismaClient(options: DatabaseOptions): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: options.databaseUrl,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
  });
  return new PrismaClient({ adapter });
}

export { applyMigrations, createDatabaseIfMissing, createMigration } from './schema-engine';

/** Where the schema and its migrations live (Prisma's standard layout). */
export const MIGRATIONS = {
  schemaPath: fileURLToPath(new URL('../schema.prisma', import.meta.url)),
  migrationsDir: fileURLToPath(new URL('../migrations', import.meta.url)),
} as const;
