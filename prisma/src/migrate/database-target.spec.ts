import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl, quoteIdent, redact, withDatabase } from './database-target';
import { SchemaEngineError } from './schema-engine-error';

describe('parseDatabaseUrl', () => {
  it('takes the database and the Prisma-only schema parameter out of the URL', () => {
    const target = parseDatabaseUrl(
      'postgresql://app:secret@db:5432/backend?schema=users&sslmode=disable',
    );

    expect(target).toMatchObject({
      url: 'postgresql://app:secret@db:5432/backend?sslmode=disable',
      database: 'backend',
      schema: 'users',
    });
  });

  it.each([
    ['not a URL', 'not a valid URL'],
    ['mysql://db/backend', 'must use postgresql://'],
    ['postgresql://db:5432/', 'must name a database'],
  ])('refuses %s', (url, message) => {
    expect(() => parseDatabaseUrl(url)).toThrow(SchemaEngineError);
    expect(() => parseDatabaseUrl(url)).toThrow(message);
  });
});

describe('redact', () => {
  it('masks the URL and the password in a message', () => {
    const target = parseDatabaseUrl('postgresql://app:p%40ss@db/backend');

    expect(redact('connect to postgresql://app:p%40ss@db/backend failed', target)).toBe(
      'connect to *** failed',
    );
    expect(redact('login app:p@ss@db refused', target)).toBe('login app***db refused');
  });
});

describe('identifiers and URLs', () => {
  it('quotes an identifier, doubling its quotes', () => {
    expect(quoteIdent('my"db')).toBe('"my""db"');
  });

  it('points a URL at another database, keeping everything else', () => {
    expect(withDatabase('postgresql://app@db:5432/backend?sslmode=disable', 'backend_shadow')).toBe(
      'postgresql://app@db:5432/backend_shadow?sslmode=disable',
    );
  });
});
