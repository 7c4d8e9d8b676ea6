/** One message from the service to a person. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** Sends mail. `send` resolves once the message is accepted for delivery. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}
