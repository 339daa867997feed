import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EnvError, parseEnv } from './env';
import { port, url } from './env.fragments';

describe('parseEnv', () => {
  const shape = {
    PORT: port(4000),
    DATABASE_URL: url(['postgresql']),
    MODE: z.enum(['a', 'b']).default('a'),
  };

  it('applies defaults and coerces values', () => {
    const env = parseEnv(shape, { DATABASE_URL: 'postgresql://x@localhost/db', PORT: '5000' });
    expect(env).toEqual({ PORT: 5000, DATABASE_URL: 'postgresql://x@localhost/db', MODE: 'a' });
    expect(Object.isFrozen(env)).toBe(true);
  });

  it('lists every problem at once, naming each variable', () => {
    let caught: unknown;
    try {
      parseEnv(shape, { PORT: 'abc', MODE: 'c' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EnvError);
    const problems = (caught as EnvError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/^PORT: /m);
    expect(problems.join('\n')).toMatch(/^DATABASE_URL: is required$/m);
    expect(problems.join('\n')).toMatch(/^MODE: /m);
  });

  it('treats empty strings as unset', () => {
    const env = parseEnv(shape, { DATABASE_URL: 'postgresql://h/db', PORT: '' });
    expect(env.PORT).toBe(4000);
  });

  it('rejects a URL with the wrong scheme', () => {
    expect(() => parseEnv(shape, { DATABASE_URL: 'mysql://h/db' })).toThrow(
      /DATABASE_URL: must be a URL with scheme postgresql/,
    );
  });
});
