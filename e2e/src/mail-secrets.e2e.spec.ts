import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bundle = (service: string) =>
  fileURLToPath(new URL(`../../services/${service}/dist/main.js`, import.meta.url));

/** Starts a built service with only `env` and returns how it ended. */
function start(service: string, env: Record<string, string>) {
  const result = spawnSync(process.execPath, [bundle(service)], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stderr: result.stderr };
}

describe('mails carry one-time codes: production never logs them', () => {
  const production = { NODE_ENV: 'production', INTERNAL_TOKEN: 'x'.repeat(32) };

  it.each(['auth', 'notification'])(
    'the %s service refuses to start in production without a mail transport, saying why',
    (service) => {
      const { status, stderr } = start(service, production);
      expect(status).toBe(78);
      expect(stderr).toContain('SMTP_URL: is required in production');
    },
  );

  it.each(['auth', 'notification'])(
    'the %s service refuses to log mail bodies in production',
    (service) => {
      const { status, stderr } = start(service, {
        ...production,
        SMTP_URL: 'smtp://127.0.0.1:2525',
        MAIL_LOG_BODIES: 'true',
      });
      expect(status).toBe(78);
      expect(stderr).toContain('MAIL_LOG_BODIES: must not be true in production');
    },
  );
});
