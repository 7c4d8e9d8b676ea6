import { createTransport } from 'nodemailer';
import type { Mailer } from './mailer.ts';

/** Mail through an SMTP server, with nodemailer's transport options (host, port, secure, auth, …). */
export function smtpMailer(transport: Record<string, unknown>, from: string): Mailer & { close(): void } {
  const transporter = createTransport(transport);
  return {
    async send(message) {
      await transporter.sendMail({ from, ...message });
    },
    close: () => transporter.close(),
  };
}
