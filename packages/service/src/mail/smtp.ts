import { createRequire } from 'node:module';
import type * as Nodemailer from 'nodemailer';
import type { Mailer } from './mailer.ts';

/**
 * Mail through an SMTP server, with nodemailer's transport options (host, port, secure, auth, …).
 * nodemailer is loaded here, when a service is configured to send mail, not when the package is
 * imported: it takes about 100 ms to import, which the CLI, a service with an outbox and every test
 * process would otherwise pay.
 */
export function smtpMailer(transport: Record<string, unknown>, from: string): Mailer & { close(): void } {
  const { createTransport } = createRequire(import.meta.url)('nodemailer') as typeof Nodemailer;
  const transporter = createTransport(transport);
  return {
    async send(message) {
      await transporter.sendMail({ from, ...message });
    },
    close: () => transporter.close(),
  };
}
