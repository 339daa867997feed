import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  nextMigrationName,
  readMigrationsList,
  readSchemaFiles,
  slugifyMigrationName,
  withDefaultLockfile,
  writeMigration,
} from './migrations-folder';
import { SchemaEngineError } from './schema-engine-error';

describe('the migrations folder', () => {
  let folder: string;

  beforeEach(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'migrations-folder-'));
  });

  afterEach(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  describe('readMigrationsList', () => {
    it('reads a missing folder as one without migrations or lock file', async () => {
      const list = await readMigrationsList(path.join(folder, 'absent'));

      expect(list.migrationDirectories).toEqual([]);
      expect(list.lockfile.content).toBeNull();
      expect(withDefaultLockfile(list).lockfile.content).toContain('provider = "postgresql"');
    });

    it('lists the migrations in name order, and a folder without migration.sql as an error', async () => {
      for (const name of ['20250102000000_b', '20250101000000_a', '20250103000000_empty'])
        await mkdir(path.join(folder, name));
      await writeFile(path.join(folder, '20250102000000_b', 'migration.sql'), 'SELECT 2;');
      await writeFile(path.join(folder, '20250101000000_a', 'migration.sql'), 'SELECT 1;');
      await writeFile(path.join(folder, 'migration_lock.toml'), 'provider = "postgresql"\n');

      const list = await readMigrationsList(folder);

      expect(list.lockfile.content).toBe('provider = "postgresql"\n');
      const [a, b, empty] = list.migrationDirectories;
      expect(list.migrationDirectories.map((dir) => dir.path)).toEqual([
        '20250101000000_a',
        '20250102000000_b',
        '20250103000000_empty',
      ]);
      expect(a?.migrationFile.content).toEqual({ tag: 'ok', value: 'SELECT 1;' });
      expect(b?.migrationFile.content).toEqual({ tag: 'ok', value: 'SELECT 2;' });
      expect(empty?.migrationFile.content.tag).toBe('error');
      expect(empty?.migrationFile.content.value).toContain('ENOENT');
    });
  });

  describe('writeMigration', () => {
    it('writes the script in a new timestamped folder, with a lock file the first time', async () => {
      const name = await writeMigration(await readMigrationsList(folder), 'init', 'SELECT 1;');

      const list = await readMigrationsList(folder);
      expect(list.migrationDirectories).toEqual([
        {
          path: name,
          migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: 'SELECT 1;' } },
        },
      ]);
      expect(list.lockfile.content).toContain('provider = "postgresql"');
    });
  });

  describe('readSchemaFiles', () => {
    it('reads every .prisma file below a folder, in path order', async () => {
      await mkdir(path.join(folder, 'models'));
      await writeFile(path.join(folder, 'schema.prisma'), 'datasource db {}');
      await writeFile(path.join(folder, 'models', 'note.prisma'), 'model Note {}');
      await writeFile(path.join(folder, 'README.md'), 'not a schema');

      const files = await readSchemaFiles(folder);

      expect(files).toEqual([
        { path: path.join(folder, 'models', 'note.prisma'), content: 'model Note {}' },
        { path: path.join(folder, 'schema.prisma'), content: 'datasource db {}' },
      ]);
    });

    it('says which schema path it cannot read', async () => {
      const missing = path.join(folder, 'missing.prisma');

      const reading = readSchemaFiles(missing);

      await expect(reading).rejects.toThrow(SchemaEngineError);
      await expect(reading).rejects.toThrow(`Cannot read Prisma schema at ${missing}`);
    });
  });
});

describe('migration names', () => {
  it('turn a human name into a lower-case slug', () => {
    expect(slugifyMigrationName('  Add Notes: title! ')).toBe('add_notes_title');
  });

  it('refuse a name without letters or digits', () => {
    expect(() => slugifyMigrationName('!!!')).toThrow(SchemaEngineError);
  });

  it('start with the UTC time to the second', () => {
    expect(nextMigrationName('init', [], new Date('2025-03-04T05:06:07.890Z'))).toBe(
      '20250304050607_init',
    );
  });

  it('stay after the newest migration when created within the same second', () => {
    const now = new Date('2025-03-04T05:06:07Z');

    expect(nextMigrationName('next', ['20250304050607_init'], now)).toBe('20250304050608_next');
  });
});
