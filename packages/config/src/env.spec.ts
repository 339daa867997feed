import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EnvError, parseEnv } from './env';
import { commonEnv, grpcClientEnv, mailEnv, mailRules, port, url } from './env.fragments';

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

describe('mailRules', () => {
  const shape = { ...commonEnv, ...mailEnv };

  it('refuses production without a mail transport, saying why', () => {
    expect(() => parseEnv(shape, { NODE_ENV: 'production' }, mailRules)).toThrow(
      /SMTP_URL: is required in production/,
    );
  });

  it('refuses logging mail bodies in production', () => {
    expect(() =>
      parseEnv(
        shape,
        { NODE_ENV: 'production', SMTP_URL: 'smtp://mail:25', MAIL_LOG_BODIES: 'true' },
        mailRules,
      ),
    ).toThrow(/MAIL_LOG_BODIES: must not be true in production/);
  });

  it('lets development run without SMTP, bodies not logged unless asked', () => {
    expect(parseEnv(shape, {}, mailRules)).toMatchObject({ MAIL_LOG_BODIES: false });
    expect(
      parseEnv(shape, { NODE_ENV: 'production', SMTP_URL: 'smtp://mail:25' }, mailRules),
    ).toMatchObject({ SMTP_URL: 'smtp://mail:25' });
  });
});

describe('gRPC service addresses', () => {
  const shape = { ADDR: grpcClientEnv('127.0.0.1:50051') };
  const accepts = (value: string) => parseEnv(shape, { ADDR: value }).ADDR;

  it('accepts one instance, a list of IP instances and a DNS target', () => {
    for (const value of [
      '127.0.0.1:50051',
      'user-service:50051',
      '[::1]:50051',
      '127.0.0.1:50051,127.0.0.1:50061',
      '10.0.0.1:50051, 10.0.0.2:50051',
      '[::1]:50051,[::1]:50061',
      'ipv4:127.0.0.1:50051,127.0.0.1:50061',
      'dns:///user-service.platform.svc.cluster.local:50051',
      'dns://10.0.0.10:53/user-service:50051',
    ])
      expect(accepts(value)).toBe(value);
  });

  it('refuses what grpc-js could not resolve', () => {
    for (const value of [
      'user-service',
      'http://user-service:50051',
      'user-1:50051,user-2:50051',
      '127.0.0.1:50051,[::1]:50061',
      '127.0.0.1:50051,',
      'dns:user-service',
    ])
      expect(() => accepts(value), value).toThrow(/ADDR: must be host:port/);
  });
});
