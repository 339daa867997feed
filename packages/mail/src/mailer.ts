import { createTransport, type Transporter } from 'nodemailer';
import type { Logger } from '@platform/logger';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface MailerOptions {
  /** `smtp://user:pass@host:port` (or smtps://); unset (development only): logged, not sent. */
  smtpUrl?: string | undefined;
  from: string;
  /** Without SMTP, also log each mail's body (one-time codes): development only, opt-in. */
  logBodies?: boolean;
  logger: Logger;
  /** Delay before each retry of a failed delivery. */
  retryDelaysMs?: readonly number[];
}

export interface Mailer {
  /** Delivers a mail, retrying with back-off; rejects once every attempt has failed. */
  send(mail: Mail): Promise<void>;
  close(): void;
}

/**
 * Outgoing mail for every service. Without SMTP (local development; production refuses to
 * start without it) a mail is only logged: to whom and its subject, and its body (which holds
 * one-time codes) only when `logBodies` is asked for.
 */
export function createMailer(options: MailerOptions): Mailer {
  const { logger } = options;
  const retryDelays = options.retryDelaysMs ?? [500, 2_000, 10_000];
  const transport: Transporter | undefined = options.smtpUrl
    ? createTransport(options.smtpUrl)
    : undefined;

  return {
    async send(mail) {
      if (!transport) {
        const logged = options.logBodies ? mail : { to: mail.to, subject: mail.subject };
        logger.info({ mail: logged }, 'mail (no SMTP_URL: logged, not sent)');
        return;
      }
      for (let attempt = 0; ; attempt++) {
        try {
          await transport.sendMail({ from: options.from, ...mail });
          return;
        } catch (error) {
          const delay = retryDelays[attempt];
          if (delay === undefined) {
            logger.error(
              { err: error, to: mail.to, attempts: attempt + 1 },
              'mail could not be delivered',
            );
            throw error;
          }
          logger.warn(
            { err: error, to: mail.to, retryInMs: delay },
            'mail delivery failed; retrying',
          );
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    },
    close() {
      transport?.close();
    },
  };
}
