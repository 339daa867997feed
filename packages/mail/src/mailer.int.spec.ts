import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { startTestSmtpServer } from '@platform/testing';
import { createMailer } from './mailer';

const logger = createLogger({ name: 'mail-test', level: 'silent' });

describe('createMailer', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('delivers over SMTP', async () => {
    const smtp = await startTestSmtpServer();
    closers.push(smtp.close);
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'platform@example.com', logger });
    closers.push(() => mailer.close());
    await mailer.send({ to: 'ada@example.com', subject: 'Hello', text: 'Your code: 1234' });
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]?.to).toBe('ada@example.com');
    expect(smtp.received[0]?.raw).toMatch(/^To: ada@example\.com/m);
    expect(smtp.received[0]?.raw).toMatch(/^Subject: Hello/m);
    expect(smtp.received[0]?.raw).toContain('Your code: 1234');
  });

  it('retries a refused delivery and then succeeds', async () => {
    const smtp = await startTestSmtpServer({ refuseFirst: 2 });
    closers.push(smtp.close);
    const mailer = createMailer({
      smtpUrl: smtp.url,
      from: 'p@example.com',
      logger,
      retryDelaysMs: [10, 10, 10],
    });
    closers.push(() => mailer.close());
    await mailer.send({ to: 'b@example.com', subject: 'Retry', text: 'x' });
    expect(smtp.received).toHaveLength(1);
  });

  it('reports a delivery that fails on every attempt', async () => {
    const smtp = await startTestSmtpServer({ refuseFirst: 10 });
    closers.push(smtp.close);
    const mailer = createMailer({
      smtpUrl: smtp.url,
      from: 'p@example.com',
      logger,
      retryDelaysMs: [10],
    });
    closers.push(() => mailer.close());
    await expect(mailer.send({ to: 'c@example.com', subject: 'Nope', text: 'x' })).rejects.toThrow(
      /try again later/,
    );
    expect(smtp.received).toHaveLength(0);
  });
});
