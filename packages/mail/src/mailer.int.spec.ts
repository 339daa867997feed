import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@platform/logger';
import { createMailer } from './mailer';

const logger = createLogger({ name: 'mail-test', level: 'silent' });

/** A real SMTP server in the test process; `failFirst` refuses that many messages first. */
async function startSmtp(failFirst = 0) {
  const received: string[] = [];
  let refused = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, callback) {
      let data = '';
      stream.on('data', (chunk: Buffer) => (data += chunk.toString()));
      stream.on('end', () => {
        if (refused < failFirst) {
          refused++;
          callback(Object.assign(new Error('try again later'), { responseCode: 451 }));
          return;
        }
        received.push(data);
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    received,
    url: `smtp://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('createMailer', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('delivers over SMTP', async () => {
    const smtp = await startSmtp();
    closers.push(smtp.close);
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'platform@example.com', logger });
    closers.push(() => mailer.close());
    await mailer.send({ to: 'ada@example.com', subject: 'Hello', text: 'Your code: 1234' });
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]).toMatch(/^To: ada@example\.com/m);
    expect(smtp.received[0]).toMatch(/^Subject: Hello/m);
    expect(smtp.received[0]).toContain('Your code: 1234');
  });

  it('retries a refused delivery and then succeeds', async () => {
    const smtp = await startSmtp(2);
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
    const smtp = await startSmtp(10);
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
