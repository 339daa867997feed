import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createMailer } from './mailer';

const RESET = { to: 'ada@example.com', subject: 'Reset your password', text: 'code 314159' };

async function loggedLines(logBodies: boolean | undefined): Promise<string> {
  const destination = new PassThrough();
  const chunks: Buffer[] = [];
  destination.on('data', (chunk: Buffer) => chunks.push(chunk));
  const logger = createLogger({ name: 'mail-test', destination });
  const mailer = createMailer({
    from: 'Platform <no-reply@localhost>',
    logger,
    ...(logBodies === undefined ? {} : { logBodies }),
  });
  await mailer.send(RESET);
  mailer.close();
  logger.flush();
  return Buffer.concat(chunks).toString('utf8');
}

describe(createMailer.name, () => {
  it('without SMTP logs that a mail was sent and to whom, never its one-time code', async () => {
    const log = await loggedLines(undefined);
    expect(log).toContain('ada@example.com');
    expect(log).toContain('Reset your password');
    expect(log).not.toContain('314159');
  });

  it('logs the body only when asked to (MAIL_LOG_BODIES in development)', async () => {
    expect(await loggedLines(true)).toContain('314159');
    expect(await loggedLines(false)).not.toContain('314159');
  });
});
